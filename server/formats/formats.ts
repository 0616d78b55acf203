/**
 * The picture formats Pixelport reads and writes at its edges, and what each can hold.
 */

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff'

export interface FormatInfo {
  readonly name: ImageFormat
  readonly mediaType: string
  /** URL suffixes, preferred first. */
  readonly extensions: readonly string[]
  /** Keeps an alpha channel (JPEG drops it). */
  readonly alpha: boolean
  /** Keeps 16-bit samples (others get 8-bit, scaled). */
  readonly sixteenBit: boolean
  /** Largest width or height the format can store. */
  readonly maxDimension: number
}

export const FORMATS: Readonly<Record<ImageFormat, FormatInfo>> = {
  png: { name: 'png', mediaType: 'image/png', extensions: ['png'], alpha: true, sixteenBit: true, maxDimension: 2 ** 31 - 1 },
  jpeg: { name: 'jpeg', mediaType: 'image/jpeg', extensions: ['jpeg', 'jpg'], alpha: false, sixteenBit: false, maxDimension: 65535 },
  webp: { name: 'webp', mediaType: 'image/webp', extensions: ['webp'], alpha: true, sixteenBit: false, maxDimension: 16383 },
  tiff: { name: 'tiff', mediaType: 'image/tiff', extensions: ['tiff', 'tif'], alpha: true, sixteenBit: true, maxDimension: 2 ** 31 - 1 },
}

/** Formats in the order the server prefers them when a client accepts several equally: lossless first. */
export const FORMAT_PREFERENCE: readonly ImageFormat[] = ['png', 'webp', 'jpeg', 'tiff']

export const IMAGE_MEDIA_TYPES: readonly string[] = Object.values(FORMATS).map((f) => f.mediaType)

const BY_MEDIA_TYPE = new Map(Object.values(FORMATS).map((f) => [f.mediaType, f.name]))

/** The format a `Content-Type` header names (parameters and case ignored), or null. */
export function formatOfMediaType (header: string | undefined): ImageFormat | null {
  if (header === undefined) return null
  return BY_MEDIA_TYPE.get(header.split(';')[0].trim().toLowerCase()) ?? null
}

/**
 * The format of a file from its first bytes. Uploads are decoded by what they are, not by what the client
 * called them, and nothing but these four formats ever reaches a decoder.
 */
export function sniffFormat (bytes: Uint8Array): ImageFormat | null {
  const at = (i: number, ...values: number[]): boolean => values.every((v, k) => bytes[i + k] === v)
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png'
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg'
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp'
  // Classic TIFF (42) and BigTIFF (43), either byte order.
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a) || at(0, 0x49, 0x49, 0x2b, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2b)) return 'tiff'
  return null
}
