/**
 * Image ids: what may name an image.
 *
 * Ids are used in URLs, in shared memory (MAX_ID_BYTES) and, later, in shared-memory segment names and
 * token prefixes (`cam1/*`). So they are short, ASCII, and can never look like a path that escapes:
 * no leading or trailing `/`, no empty segment, no `.` or `..` segment.
 */
import { pxpError } from './errors.js'
import { MAX_ID_BYTES } from './layout.js'

export const ID_PATTERN = '^[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*(/[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*)*$'
const ID_RE = new RegExp(ID_PATTERN)
export const MAX_ID_LENGTH = MAX_ID_BYTES

export function isValidId (id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return false
  // A segment cannot start with '.', so '.' and '..' segments are impossible by construction.
  return ID_RE.test(id)
}

export function assertValidId (id: unknown): asserts id is string {
  if (!isValidId(id)) throw pxpError('PXP_ERR_BAD_ID', typeof id === 'string' ? id.slice(0, 200) : id)
}
