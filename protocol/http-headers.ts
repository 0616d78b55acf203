/**
 * HTTP headers that the server and the clients both read and write: the `Prefer` preferences (RFC 7240)
 * the API knows, and the descriptor that a download can carry in a header.
 *
 * `Prefer: descriptor` on `GET /images/:id/data` asks for the descriptor of exactly the bytes sent, in
 * `X-Pixelport-Descriptor`: base64url of its UTF-8 JSON (header values are ASCII; ids need not be). A
 * download is then one request instead of a descriptor request beside it, and the two cannot disagree.
 * The server leaves the header out (no `Preference-Applied: descriptor`) when it would be longer than
 * DESCRIPTOR_HEADER_LIMIT (a line-based image with many row segments); the client then asks for the
 * descriptor separately.
 */
import type { ImageDescriptor } from './descriptor.js'

export const PREFER_REDIRECT = 'redirect'
export const PREFER_DESCRIPTOR = 'descriptor'
export const DESCRIPTOR_HEADER = 'x-pixelport-descriptor'
/** Longest X-Pixelport-Descriptor value sent: well inside the 16 KiB header limits of Node.js and undici. */
export const DESCRIPTOR_HEADER_LIMIT = 8192

/** True when a `Prefer` header (comma-separated preferences, each `name[=value][; params]`) names `name`. */
export function prefers (prefer: string | string[] | undefined, name: string): boolean {
  if (prefer === undefined) return false
  const text = Array.isArray(prefer) ? prefer.join(',') : prefer
  return text.split(',').some((p) => p.split(';')[0].split('=')[0].trim().toLowerCase() === name)
}

/** A `Prefer` header without the preference `name` (undefined when nothing is left). */
export function withoutPreference (prefer: string | undefined, name: string): string | undefined {
  if (prefer === undefined) return undefined
  const kept = prefer.split(',').filter((p) => p.split(';')[0].split('=')[0].trim().toLowerCase() !== name).join(',').trim()
  return kept === '' ? undefined : kept
}

/** The X-Pixelport-Descriptor value for `descriptor`, or null when it would be longer than the limit. */
export function encodeDescriptorHeader (descriptor: ImageDescriptor): string | null {
  const utf8 = new TextEncoder().encode(JSON.stringify(descriptor))
  // base64 is 4 characters per 3 bytes: too long already, no need to encode.
  if (Math.ceil(utf8.byteLength / 3) * 4 > DESCRIPTOR_HEADER_LIMIT) return null
  let binary = ''
  for (let i = 0; i < utf8.byteLength; i += 0x8000) binary += String.fromCharCode(...utf8.subarray(i, i + 0x8000))
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * The descriptor in an X-Pixelport-Descriptor value, or null when it is not one (not base64url, not JSON,
 * or an object without the fields a download is checked against: the caller then asks for it separately).
 */
export function decodeDescriptorHeader (value: string | undefined): ImageDescriptor | null {
  if (value === undefined || value.length > DESCRIPTOR_HEADER_LIMIT || !/^[A-Za-z0-9_-]*$/.test(value)) return null
  try {
    const binary = atob(value.replace(/-/g, '+').replace(/_/g, '/'))
    const utf8 = Uint8Array.from(binary, (c) => c.charCodeAt(0))
    const d = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(utf8)) as Partial<ImageDescriptor> | null
    const valid = typeof d === 'object' && d !== null && typeof d.id === 'string' && typeof d.typestr === 'string' &&
      Array.isArray(d.shape) && d.shape.every((n) => Number.isInteger(n) && n >= 0) &&
      Number.isInteger(d.byteLength) && Number.isInteger(d.generation)
    return valid ? d as ImageDescriptor : null
  } catch {
    return null
  }
}
