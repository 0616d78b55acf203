/**
 * Any Pixelport image as 8-bit RGBA for a <canvas>: what each mode and dtype looks like on screen.
 *
 * 8-bit data is shown as it is, 16-bit unsigned (I;16, I;16B) scaled to 8 bits, booleans (mode 1) as black
 * and white, and every other dtype (I, F, signed, 64-bit) stretched from its minimum to its maximum, since
 * such images have no fixed white level. The formulas (and the colour modes) are protocol/colour.ts, which
 * the server's pictures use too: the canvas shows what a PNG of the image holds. No DOM here: the page wraps
 * the result in an ImageData.
 */
import { level16, needsRgbConversion, stretchTo8, toRgb } from '../protocol/colour.js'
import { dtypeOf, type DType } from '../protocol/dtypes.js'
import { pxpError } from '../protocol/errors.js'

export interface FramePixels {
  /** Shape of `bytes` in C order: (h, w) or (h, w, c) with 1-4 channels. */
  shape: readonly number[]
  typestr: string
  /** Pillow mode, or null for a raw shape + typestr. */
  mode?: string | null
  bytes: Uint8Array
}

export interface Rgba {
  width: number
  height: number
  /** width × height × 4 bytes, ready for `new ImageData(rgba, width, height)`. */
  rgba: Uint8ClampedArray
  /** For stretched dtypes: the values shown as black and white. */
  range: [number, number] | null
}

/**
 * Why an image (its shape and typestr) cannot be drawn, in a few words for a placeholder; null when it can.
 * The same rule as the server's pictures (server/formats/raster.ts): rows × columns, optionally × 1-4
 * channels. Anything else is a tensor, not a picture: shown as a labelled placeholder, never fetched.
 */
export function whyNotDrawable (shape: readonly number[], typestr: string): string | null {
  if (shape.length === 1) return `1-D array of ${shape[0]} values: no rows and columns to draw`
  if (shape.length !== 2 && shape.length !== 3) return `${shape.length}-D array [${shape.join('×')}]: a picture is rows × columns (× channels)`
  if (shape.length === 3 && (shape[2] < 1 || shape[2] > 4)) return `${shape[2]} channels: a picture has 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)`
  let dtype: DType
  try {
    dtype = dtypeOf(typestr)
  } catch {
    return `dtype ${typestr} is not drawn`
  }
  const known = (dtype.kind === 'u' && dtype.itemSize === 1) || dtype.kind === 'b' || READERS[`${dtype.kind}${dtype.itemSize}`] !== undefined
  return known ? null : `dtype ${typestr} is not drawn`
}

/** Height, width and channels of a drawable shape. */
function geometry (shape: readonly number[]): [number, number, number] {
  if (shape.length === 2) return [shape[0], shape[1], 1]
  if (shape.length === 3 && shape[2] >= 1 && shape[2] <= 4) return [shape[0], shape[1], shape[2]]
  throw pxpError('PXP_ERR_BAD_SHAPE', `[${shape.join(', ')}] cannot be drawn (rows, columns and 1-4 channels)`)
}

/** Every element's numeric value, in host order whatever the dtype's byte order. */
function numbers (dtype: DType, bytes: Uint8Array, count: number): Float64Array {
  const out = new Float64Array(count)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const little = dtype.littleEndian !== false
  const size = dtype.itemSize
  const read = READERS[`${dtype.kind}${size}`]
  if (read === undefined) throw pxpError('PXP_ERR_BAD_DTYPE', dtype.typestr)
  for (let i = 0; i < count; i++) out[i] = read(view, i * size, little)
  return out
}

const READERS: Readonly<Record<string, (view: DataView, at: number, little: boolean) => number>> = {
  i1: (v, at) => v.getInt8(at),
  i2: (v, at, le) => v.getInt16(at, le),
  u2: (v, at, le) => v.getUint16(at, le),
  i4: (v, at, le) => v.getInt32(at, le),
  u4: (v, at, le) => v.getUint32(at, le),
  f4: (v, at, le) => v.getFloat32(at, le),
  f8: (v, at, le) => v.getFloat64(at, le),
  i8: (v, at, le) => Number(v.getBigInt64(at, le)),
  u8: (v, at, le) => Number(v.getBigUint64(at, le)),
}

/** Every element as a 0–255 level, plus the range stretched when the dtype has no fixed scale. */
function levelsOf (dtype: DType, bytes: Uint8Array, count: number): { levels: Uint8Array, range: [number, number] | null } {
  if (bytes.byteLength < count * dtype.itemSize) throw pxpError('PXP_ERR_BYTE_COUNT', count * dtype.itemSize, bytes.byteLength)
  if (dtype.kind === 'u' && dtype.itemSize === 1) return { levels: bytes.subarray(0, count), range: null }
  const levels = new Uint8Array(count)
  if (dtype.kind === 'b') {
    for (let i = 0; i < count; i++) levels[i] = bytes[i] !== 0 ? 255 : 0
    return { levels, range: null }
  }
  if (dtype.kind === 'u' && dtype.itemSize === 2) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const little = dtype.littleEndian !== false
    for (let i = 0; i < count; i++) levels[i] = level16(view.getUint16(i * 2, little))
    return { levels, range: null }
  }
  return stretchTo8(numbers(dtype, bytes, count))
}

/** Convert one frame to RGBA. Throws PXP_ERR_BAD_SHAPE for shapes that are not pictures (see whyNotDrawable). */
export function toRgba (frame: FramePixels): Rgba {
  const [height, width, channels] = geometry(frame.shape)
  const pixels = width * height
  const { levels, range } = levelsOf(dtypeOf(frame.typestr), frame.bytes, pixels * channels)
  const mode = frame.mode ?? null
  if (channels === 4 && mode !== 'RGBX' && mode !== 'CMYK') {
    // RGBA bytes are the canvas's own layout: no copy at all.
    return { width, height, rgba: new Uint8ClampedArray(levels.buffer, levels.byteOffset, pixels * 4), range }
  }
  const rgba = new Uint8ClampedArray(pixels * 4)
  if (channels >= 3 && needsRgbConversion(mode)) {
    toRgb(mode, levels, pixels, rgba, 4)
    for (let o = 3; o < rgba.length; o += 4) rgba[o] = 255
    return { width, height, rgba, range }
  }
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += channels, o += 4) {
    if (channels === 1) {
      rgba[o] = rgba[o + 1] = rgba[o + 2] = levels[i]
      rgba[o + 3] = 255
    } else if (channels === 2) {
      rgba[o] = rgba[o + 1] = rgba[o + 2] = levels[i]
      rgba[o + 3] = levels[i + 1]
    } else {
      // RGB, RGBX, and raw shapes with 3 or 4 channels: the first three as red, green, blue.
      rgba[o] = levels[i]
      rgba[o + 1] = levels[i + 1]
      rgba[o + 2] = levels[i + 2]
      rgba[o + 3] = 255
    }
  }
  return { width, height, rgba, range }
}
