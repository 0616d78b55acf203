/**
 * Picture files for the format tests: common ones made with sharp from known pixels, and hand-built PNG and
 * TIFF files for what an encoder would not write on purpose (palettes, 1-bit, float and int32 samples,
 * headers that lie, decompression bombs).
 */
import zlib from 'node:zlib'
import sharp from 'sharp'

/** Deterministic pixels: every byte different from its neighbours. */
export function pattern (n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** Samples as little-endian bytes (what a `<u2` image holds). */
export function u16le (values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer)
}

type Space = 'b-w' | 'srgb' | 'grey16' | 'rgb16'

/**
 * Encode raw pixels with sharp: `bytes` are 8-bit, or 16-bit host-order when `sixteen`. `options` go to
 * the format's encoder.
 */
export async function encodeWithSharp (
  bytes: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4,
  format: 'png' | 'jpeg' | 'webp' | 'tiff', options: Record<string, unknown> = {}, sixteen = false,
): Promise<Buffer> {
  const data = sixteen ? new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) : bytes
  const space: Space = channels <= 2 ? (sixteen ? 'grey16' : 'b-w') : (sixteen ? 'rgb16' : 'srgb')
  const image = sharp(data, { raw: { width, height, channels } }).toColourspace(space)
  return await image[format](options).toBuffer()
}

/** Decode any picture to raw samples with sharp, keeping its bands and depth. */
export async function decodeWithSharp (file: Uint8Array): Promise<{ data: Buffer, width: number, height: number, channels: number, depth: string, space: string }> {
  const meta = await sharp(file).metadata()
  // LA: sharp hands b-w out as one band; srgb keeps the alpha.
  const space = meta.space === 'b-w' && meta.channels === 2 ? 'srgb' : meta.space
  const { data, info } = await sharp(file, { ignoreIcc: true }).toColourspace(space).raw({ depth: meta.depth }).toBuffer({ resolveWithObject: true })
  if (space !== meta.space) {
    const la = Buffer.from(data.filter((_, i) => i % 4 === 0 || i % 4 === 3))
    return { data: la, width: info.width, height: info.height, channels: 2, depth: meta.depth as string, space: meta.space }
  }
  return { data, width: info.width, height: info.height, channels: info.channels, depth: meta.depth as string, space: meta.space }
}

function chunk (type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt32BE(data.byteLength)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(zlib.crc32(body))
  return Buffer.concat([head, body, crc])
}

export interface PngParts {
  width: number
  height: number
  bitDepth: 1 | 2 | 4 | 8 | 16
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA */
  colorType: 0 | 2 | 3 | 4 | 6
  /** Packed scanlines without filter bytes (filter 0 is added); may be fewer than `height`. */
  rows: Uint8Array[]
  palette?: number[]
  transparency?: number[]
}

/** A PNG exactly as described, including lies (a header that promises more rows than there are). */
export function buildPng (p: PngParts): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(p.width, 0)
  ihdr.writeUInt32BE(p.height, 4)
  ihdr[8] = p.bitDepth
  ihdr[9] = p.colorType
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)]
  if (p.palette !== undefined) parts.push(chunk('PLTE', Uint8Array.from(p.palette)))
  if (p.transparency !== undefined) parts.push(chunk('tRNS', Uint8Array.from(p.transparency)))
  const raw = Buffer.concat(p.rows.flatMap((r) => [Buffer.from([0]), Buffer.from(r)]))
  parts.push(chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', new Uint8Array(0)))
  return Buffer.concat(parts)
}

/** `n` rows of `rowBytes` bytes each, from `pattern`. */
export function rowsOf (bytes: Uint8Array, rowBytes: number): Uint8Array[] {
  const rows: Uint8Array[] = []
  for (let at = 0; at < bytes.byteLength; at += rowBytes) rows.push(bytes.subarray(at, at + rowBytes))
  return rows
}

/**
 * A decompression bomb: a header for `width` x `height` RGBA and one tiny compressed row of zeros. A few
 * hundred bytes that would decode to gigabytes.
 */
export function pngBomb (width: number, height: number): Buffer {
  return buildPng({ width, height, bitDepth: 8, colorType: 6, rows: [new Uint8Array(Math.min(width * 4, 1024))] })
}

export interface TiffParts {
  width: number
  height: number
  /** Little-endian samples, one channel, C order. */
  data: Uint8Array
  bitsPerSample: 8 | 16 | 32
  /** 1 unsigned, 2 signed, 3 float */
  sampleFormat: 1 | 2 | 3
}

/** A one-channel, uncompressed, little-endian TIFF (what scientific cameras write for float and int32). */
export function buildTiff (t: TiffParts): Buffer {
  const SHORT = 3
  const LONG = 4
  const entries: Array<[tag: number, type: number, value: number]> = [
    [256, LONG, t.width],
    [257, LONG, t.height],
    [258, SHORT, t.bitsPerSample],
    [259, SHORT, 1], // no compression
    [262, SHORT, 1], // black is zero
    [273, LONG, 0], // strip offset, filled in below
    [277, SHORT, 1],
    [278, LONG, t.height],
    [279, LONG, t.data.byteLength],
    [284, SHORT, 1],
    [339, SHORT, t.sampleFormat],
  ]
  const ifdOffset = 8
  const ifdBytes = 2 + entries.length * 12 + 4
  const dataOffset = ifdOffset + ifdBytes
  const out = Buffer.alloc(dataOffset + t.data.byteLength)
  out.write('II', 0, 'latin1')
  out.writeUInt16LE(42, 2)
  out.writeUInt32LE(ifdOffset, 4)
  out.writeUInt16LE(entries.length, ifdOffset)
  entries.forEach(([tag, type, value], i) => {
    const at = ifdOffset + 2 + i * 12
    out.writeUInt16LE(tag, at)
    out.writeUInt16LE(type, at + 2)
    out.writeUInt32LE(1, at + 4)
    const v = tag === 273 ? dataOffset : value
    if (type === SHORT) out.writeUInt16LE(v, at + 8)
    else out.writeUInt32LE(v, at + 8)
  })
  out.writeUInt32LE(0, ifdOffset + 2 + entries.length * 12)
  out.set(t.data, dataOffset)
  return out
}
