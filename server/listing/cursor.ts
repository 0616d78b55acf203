/**
 * The opaque `cursor` of list pages: where the previous page ended.
 *
 * A cursor names the sort key of the last item a page returned (not a position), so it stays valid when
 * images are created or deleted between pages, the image it names included: the next page starts at the
 * first key after it. It is base64url of a scope letter and the key; anything else a client sends is
 * refused with PXP_ERR_VALIDATION (a cursor is checked like any other input, never trusted). A cursor
 * grants nothing: pages only ever hold what the caller may see.
 */
import { pxpError } from '../../protocol/errors.js'
import { isValidId } from '../../protocol/ids.js'
import { LIST_MAX_CURSOR_LENGTH } from '../../protocol/messages.js'

export type ListScope = 'local' | 'cluster'

/** Longest cursor accepted (an id of 128 characters and a node id of 64 fit with room to spare). */
export const MAX_CURSOR_LENGTH = LIST_MAX_CURSOR_LENGTH

const SCOPE_LETTER: Record<ListScope, string> = { local: 'l', cluster: 'c' }
const BASE64URL = /^[A-Za-z0-9_-]+$/
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** Separates the id from the node id in a cluster key; below every id character, so keys sort by (id, node). */
export const KEY_SEPARATOR = '\u0000'

export function encodeCursor (scope: ListScope, key: string): string {
  return Buffer.from(SCOPE_LETTER[scope] + key, 'utf8').toString('base64url')
}

/** The key a cursor names, or PXP_ERR_VALIDATION (naming `field`) for anything that is not one of ours. */
export function decodeCursor (scope: ListScope, cursor: unknown, field = 'cursor'): string {
  const refuse = (why: string): never => { throw pxpError('PXP_ERR_VALIDATION', `${field} ${why}`) }
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) {
    return refuse('is not a cursor this server issued (take it from the previous page\'s `next`)')
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  // Node's decoder is lenient (it ignores stray bits and padding): only the canonical spelling is ours.
  if (Buffer.from(text, 'utf8').toString('base64url') !== cursor) return refuse('is not a cursor this server issued')
  const letter = text[0]
  const key = text.slice(1)
  if (letter !== SCOPE_LETTER[scope]) return refuse(`was issued for another scope than ${scope}`)
  if (scope === 'local') {
    if (!isValidId(key)) return refuse('is not a cursor this server issued')
    return key
  }
  const at = key.indexOf(KEY_SEPARATOR)
  if (at < 0 || !isValidId(key.slice(0, at)) || !NODE_ID.test(key.slice(at + 1))) return refuse('is not a cursor this server issued')
  return key
}
