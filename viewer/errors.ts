/**
 * Reading errors from the client: match on `code` (it survives structured clone; class identity does not).
 */
export function codeOf (err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'PXP_ERR_INTERNAL'
}

export function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
