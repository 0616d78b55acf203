/**
 * `Accept` negotiation between an image's JSON descriptor and a picture of it.
 *
 * JSON stays the default: a picture is chosen only when the client names an image type (or `image/*`) with
 * a higher quality than both `application/json` and `text/html`. So `<img src>` requests and
 * `Accept: image/png` get pictures, while a browser tab (which also lists image types, but `text/html`
 * first) and `*\/*` clients keep getting JSON.
 */
import { FORMAT_PREFERENCE, FORMATS, type ImageFormat } from './formats.js'

interface Range {
  type: string
  subtype: string
  q: number
}

function parseAccept (header: string): Range[] {
  const ranges: Range[] = []
  for (const part of header.split(',')) {
    const [mediaRange, ...params] = part.split(';')
    const [type, subtype] = mediaRange.trim().toLowerCase().split('/')
    if (type === undefined || subtype === undefined || type === '' || subtype === '') continue
    let q = 1
    for (const p of params) {
      const [name, value] = p.split('=').map((s) => s.trim())
      if (name.toLowerCase() === 'q') {
        const n = Number(value)
        q = Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0
      }
    }
    ranges.push({ type, subtype, q })
  }
  return ranges
}

/**
 * The quality the client gives `mediaType`, from the most specific range that matches it (RFC 9110 §12.5.1);
 * `wildcardAll` false ignores `*\/*`, so only ranges that name the type count.
 */
function qualityOf (ranges: readonly Range[], mediaType: string, wildcardAll = true): number {
  const [type, subtype] = mediaType.split('/')
  let best = -1
  let specificity = -1
  for (const r of ranges) {
    let s: number
    if (r.type === type && r.subtype === subtype) s = 2
    else if (r.type === type && r.subtype === '*') s = 1
    else if (wildcardAll && r.type === '*' && r.subtype === '*') s = 0
    else continue
    if (s > specificity) {
      specificity = s
      best = r.q
    }
  }
  return Math.max(best, 0)
}

/** The picture format an `Accept` header asks for instead of JSON, or null for JSON. */
export function negotiatePicture (accept: string | undefined): ImageFormat | null {
  if (accept === undefined || accept.trim() === '') return null
  const ranges = parseAccept(accept)
  let chosen: ImageFormat | null = null
  let chosenQ = 0
  for (const format of FORMAT_PREFERENCE) {
    const q = qualityOf(ranges, FORMATS[format].mediaType, false)
    if (q > chosenQ) {
      chosen = format
      chosenQ = q
    }
  }
  if (chosen === null) return null
  const rival = Math.max(qualityOf(ranges, 'application/json'), qualityOf(ranges, 'text/html'))
  return chosenQ > rival ? chosen : null
}
