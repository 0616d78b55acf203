/**
 * Where a request for another node's image goes: the owner's advertised origin and the client's path and
 * query, never a host the client named. Shared by forwarding (forward.ts) and redirects (redirect.ts).
 */
import { pxpError } from '../../protocol/errors.js'

/** The query parameter that asks for a redirect. */
export const REDIRECT_PARAM = 'redirect'

/**
 * The URL at the owner for `pathAndQuery`: the owner's advertised origin, and the client's path and query
 * only. Anything that is not a plain path (`http://elsewhere/…`, `//elsewhere/…`, `*`) is refused, so no
 * request target can move the request, or the token with it, to another host.
 */
export function ownerTarget (ownerUrl: string, pathAndQuery: string): URL {
  const origin = new URL(ownerUrl).origin
  if (!pathAndQuery.startsWith('/') || pathAndQuery.startsWith('//')) throw pxpError('PXP_ERR_BAD_TARGET', pathAndQuery.slice(0, 200))
  const target = new URL(origin + pathAndQuery)
  if (target.origin !== origin) throw pxpError('PXP_ERR_BAD_TARGET', pathAndQuery.slice(0, 200))
  return target
}

/** `pathAndQuery` without any `redirect` query parameter (the other parameters as they were written). */
export function withoutRedirectParam (pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?')
  if (q < 0) return pathAndQuery
  const kept = pathAndQuery.slice(q + 1).split('&').filter((part) => {
    const name = part.split('=')[0]
    let decoded = name
    try { decoded = decodeURIComponent(name.replace(/\+/g, ' ')) } catch {}
    return part !== '' && decoded !== REDIRECT_PARAM
  })
  return pathAndQuery.slice(0, q) + (kept.length === 0 ? '' : `?${kept.join('&')}`)
}
