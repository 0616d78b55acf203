/**
 * How a client command fails: every failure carries the process exit code and a hint for what to do next.
 */

/** 0 ok, 1 the server said no, 2 usage error, 3 the server could not be reached. */
export const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, UNREACHABLE: 3 } as const

/** What to try after the server refused with a given code. */
const HINTS: Readonly<Record<string, string>> = {
  PXP_ERR_NOT_FOUND: 'run "pixelport ls" to see the ids there are',
  PXP_ERR_ALREADY_EXISTS: 'pick another --id, or remove the old one with "pixelport rm ID"',
  PXP_ERR_BAD_ID: 'ids are "/"-separated segments of A-Z a-z 0-9 . _ -',
  PXP_ERR_BYTE_COUNT: 'the file size must equal the product of --shape times the item size',
  PXP_ERR_BAD_IMAGE: 'is the file a valid PNG, JPEG, WebP or TIFF?',
  PXP_ERR_CAPACITY: 'the server\'s memory (its --capacity) is full: free some with "pixelport rm ID", or start it with a larger --capacity',
  // The per-image limit is --max-image-bytes, but never more than --capacity: either may be the one hit.
  PXP_ERR_TOO_LARGE: 'the image is larger than the server accepts: start it with a larger --max-image-bytes, or a larger --capacity when that is the smaller one',
  PXP_ERR_NOT_ENCODABLE: 'download the raw bytes instead (-o FILE.raw)',
}

/**
 * The server answers 401 PXP_ERR_UNAUTHORIZED both when no token came and when it knows none such: only
 * the client knows which, and the advice differs.
 */
function authHint (code: string, tokenSource: string | undefined): string | undefined {
  if (code === 'PXP_ERR_UNAUTHORIZED') {
    return tokenSource === undefined
      ? 'this server requires a token: pass one with --token or PIXELPORT_TOKEN'
      : `the server does not accept the token from ${tokenSource}: check it against the server's --token/--token-file/PIXELPORT_TOKENS`
  }
  if (code === 'PXP_ERR_FORBIDDEN') {
    return `the token${tokenSource === undefined ? '' : ` from ${tokenSource}`} is valid but not allowed this: it needs the scope (read, write, admin) and ids for it`
  }
  return undefined
}

/** A failure that ends the command with `exitCode`; `message` and `hint` go to stderr. */
export class CliFailure extends Error {
  constructor (message: string, readonly exitCode: number, readonly hint?: string, readonly code?: string) {
    super(message)
    this.name = 'CliFailure'
  }
}

/** A usage error (exit 2), e.g. a missing argument or an unknown flag. */
export function usage (message: string, command: string): CliFailure {
  return new CliFailure(message, EXIT.USAGE, command === 'help' ? 'see "pixelport --help"' : `see "pixelport ${command} --help"`)
}

/**
 * The server answered with an error body `{ code, message }` (exit 1). `tokenSource` says whether (and
 * where from) a token was sent, for the hint of an authentication error.
 */
export function refused (code: string, message: string, tokenSource?: string): CliFailure {
  return new CliFailure(`${code}: ${message}`, EXIT.REFUSED, authHint(code, tokenSource) ?? HINTS[code], code)
}

/** No connection to the server (exit 3). */
export function unreachable (url: string, reason: string): CliFailure {
  return new CliFailure(`cannot reach the server at ${url} (${reason})`, EXIT.UNREACHABLE,
    'is it running? start it with "npm start" (or "pixelport serve"), or point --url / PIXELPORT_URL at it')
}
