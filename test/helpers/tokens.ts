/**
 * What the security tests share: tokens with scopes and id limits, and an HTTP call with one.
 */
import type { HttpBody } from '../../client/remote/index.js'
import type { TokenSpec } from '../../server/auth/tokens.js'
import { send } from './http.js'

export const ADMIN = 'A'.repeat(32)
/** read and write, limited to `a/*`. */
export const A_RW = 'a'.repeat(32)
/** read and write on `a/*` and `b/*`. */
export const AB_RW = 'b'.repeat(32)
/** read only, limited to `a/*`. */
export const A_READ = 'r'.repeat(32)
/** read and write on everything, not admin. */
export const ALL_RW = 'w'.repeat(32)

export const TOKENS: TokenSpec[] = [
  { token: ADMIN, scopes: ['admin'], name: 'admin' },
  { token: A_RW, scopes: ['read', 'write'], ids: ['a/*'], name: 'a-rw' },
  { token: AB_RW, scopes: ['read', 'write'], ids: ['a/*', 'b/*'], name: 'ab-rw' },
  { token: A_READ, scopes: ['read'], ids: ['a/*'], name: 'a-read' },
  { token: ALL_RW, scopes: ['read', 'write'], name: 'all-rw' },
]

export interface Answer { status: number, body: any, headers: Headers }

/** A request (test/helpers/http.ts) with `Authorization: Bearer token`; the body parsed as JSON when it is. */
export async function call (url: string, token: string | undefined, init: { method?: string, headers?: Record<string, string>, body?: HttpBody | ArrayBuffer } = {}): Promise<Answer> {
  const headers = { ...init.headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }
  const res = await send(url, init.method ?? 'GET', url, { headers, body: init.body instanceof ArrayBuffer ? new Uint8Array(init.body) : init.body })
  const text = new TextDecoder().decode(res.bytes)
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body, headers: new Headers(res.headers) }
}

export const JSON_BODY = { 'content-type': 'application/json' }
export const RAW_BODY = { 'content-type': 'application/octet-stream' }
