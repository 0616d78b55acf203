/**
 * HTTP `Range` (one byte range) and the entity-tag preconditions that go with it.
 *
 * Only single byte ranges are served as 206. Other units and multi-range requests get the whole body
 * (RFC 9110 lets a server ignore Range), so clients never have to parse multipart/byteranges. A `bytes=`
 * range that is malformed or starts past the end is refused with 416 and PXP_ERR_BAD_RANGE.
 */
import { pxpError } from '../../protocol/errors.js'

/** An inclusive byte range `[start, end]`, as in `Content-Range: bytes start-end/size`. */
export interface ByteRange {
  start: number
  end: number
}

const SPEC = /^(\d*)-(\d*)$/

/**
 * A position of `digits` (SPEC allows nothing else). Past Number.MAX_SAFE_INTEGER it is Infinity: no body is
 * that large, so such an end is clamped to the last byte, such a start lies past the end (416), and such a
 * suffix length means the whole body, as RFC 9110 §14.1.2 asks, however many digits were sent.
 */
function position (digits: string): number {
  const n = Number(digits)
  return Number.isSafeInteger(n) ? n : Infinity
}

/**
 * Parse a Range header against a body of `size` bytes. Returns null when the whole body should be sent
 * (no header, another unit, several ranges); throws PXP_ERR_BAD_RANGE when the range cannot be served.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null
  const eq = header.indexOf('=')
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return null
  const specs = header.slice(eq + 1).split(',').map((s) => s.trim())
  if (specs.length > 1) return null
  const m = SPEC.exec(specs[0])
  if (m === null || (m[1] === '' && m[2] === '')) throw pxpError('PXP_ERR_BAD_RANGE', header)
  if (m[1] === '') {
    // Suffix range: the last n bytes.
    const n = position(m[2])
    if (n === 0) throw pxpError('PXP_ERR_BAD_RANGE', header)
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = position(m[1])
  const end = m[2] === '' ? size - 1 : position(m[2])
  if (end < start || start >= size) throw pxpError('PXP_ERR_BAD_RANGE', header)
  return { start, end: Math.min(end, size - 1) }
}

/** The entity tag of a generation. Strong: equal tags mean byte-identical bodies. */
export function etagOf (generation: number): string {
  return `"${generation}"`
}

/** True when an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 asks for GET). */
export function matchesIfNoneMatch (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return header.split(',').some((tag) => {
    const t = tag.trim()
    return (t.startsWith('W/') ? t.slice(2) : t) === etag
  })
}

/**
 * True when a range request may be honoured under `If-Range`: no If-Range at all, or a strong tag equal
 * to the current one. A date never matches, since images carry no Last-Modified.
 */
export function ifRangeAllows (header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag
}
