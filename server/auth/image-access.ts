/**
 * Access to one image, views included: the one place a transport asks whether a principal may read or
 * write an image it names.
 *
 * A view's pixels are its base's (views of views are views of the root), so reaching them through a view
 * needs the scope on the base as well as on the view: otherwise a view `a/v` of `b/secret` would hand an
 * `a/*` token `b/secret`'s pixels. Deleting a view touches no pixel and needs `write` on the view alone.
 */
import { pxpError } from '../../protocol/errors.js'
import type { Principal, Scope } from './tokens.js'

/** What access checks need from the store: the base of a view. */
export interface ViewBases {
  baseOf (id: string): string | null
}

/**
 * Throw PXP_ERR_FORBIDDEN (or UNAUTHORIZED) unless `principal` has `scope` on `id` and, when `id` is a
 * view, on its base. Decided from the ids: an unknown id is checked by name only, as before.
 */
export function assertImageAccess (principal: Principal, scope: Scope, id: string, store: ViewBases): void {
  principal.assert(scope, id)
  const base = store.baseOf(id)
  // The scope itself was checked above, so only the base's id can fail here. The base's id is not named.
  if (base !== null && !principal.mayTouch(base)) {
    throw pxpError('PXP_ERR_FORBIDDEN', `${id} is a view of an image outside this token's ids`)
  }
}

/** The same check, as a boolean. */
export function mayAccessImage (principal: Principal, scope: Scope, id: string, store: ViewBases): boolean {
  try {
    assertImageAccess(principal, scope, id, store)
    return true
  } catch {
    return false
  }
}

/** Eviction on behalf of `principal` may only remove images it could delete itself. */
export function evictableBy (principal: Principal): (id: string) => boolean {
  return (id) => principal.mayDelete(id)
}
