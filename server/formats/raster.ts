/**
 * Any Pixelport image (C-order bytes + shape, typestr, mode) as a raster a picture format can hold: 1-4
 * channels (grey, grey + alpha, RGB, RGBA) of 8- or 16-bit samples.
 *
 * The conversions, in one place because the docs promise them (the sample and colour formulas are
 * protocol/colour.ts, shared with the viewer):
 * - `|u1` as is; `|b1` (mode `1`) as 0/255.
 * - `<u2`/`>u2` (I;16, I;16B, 16-bit colour) stay 16-bit where the format allows, else v / 257 rounded.
 * - Every other dtype (I, F, signed, 32/64-bit) is scaled linearly from its min..max (finite values, all
 *   channels together) to 0..255; NaN and -Inf become 0, +Inf 255; a constant image is 0. The range is
 *   reported so a client can undo it.
 * - Modes: P/PA as grey (no palette is stored), RGBX drops X, CMYK/YCbCr/HSV/LAB are converted to RGB.
 * The source bytes are never written to: they may be a snapshot other readers share.
 */
import { dtypeOf, type DType } from '../../protocol/dtypes.js'
import { level16, needsRgbConversion, stretchTo8, toRgb } from '../../protocol/colour.js'

export interface PixelSource {
  readonly shape: readonly number[]
  readonly typestr: string
  readonly mode: string | null
}

export interface Raster {
  readonly data: Uint8Array | Uint16Array
  readonly width: number
  readonly height: number
  readonly channels: 1 | 2 | 3 | 4
  /** 16-bit samples (data is a Uint16Array in host order). */
  readonly sixteen: boolean
  /** The value range that was scaled to 0..255, when samples were scaled. */
  readonly range: readonly [number, number] | null
}

/** Why an image cannot become a picture; the caller names the image and format. */
export class NotEncodable extends Error {}

/**
 * The raster for `source`'s `bytes` (exactly its byte length, C order). `keep16` when the target format
 * holds 16-bit samples. Throws NotEncodable for shapes a picture cannot have.
 */
export function toRaster (source: PixelSource, bytes: Uint8Array, keep16: boolean): Raster {
  const { shape, mode } = source
  if (shape.length < 2 || shape.length > 3) {
    throw new NotEncodable(`shape [${shape.join(', ')}] is not [rows, columns] or [rows, columns, channels]`)
  }
  const [height, width] = shape
  let channels = shape.length === 3 ? shape[2] : 1
  const pixels = width * height
  const dtype = dtypeOf(source.typestr)

  let data: Uint8Array | Uint16Array
  let sixteen = false
  let range: [number, number] | null = null
  if (dtype.kind === 'b' || mode === '1') {
    data = new Uint8Array(bytes.byteLength)
    for (let i = 0; i < bytes.byteLength; i++) data[i] = bytes[i] === 0 ? 0 : 255
  } else if (dtype.typestr === '|u1') {
    data = bytes
  } else if (dtype.kind === 'u' && dtype.itemSize === 2) {
    const samples = nativeView(bytes, dtype) as Uint16Array
    if (keep16) {
      data = samples
      sixteen = true
    } else {
      data = new Uint8Array(samples.length)
      for (let i = 0; i < samples.length; i++) data[i] = level16(samples[i])
    }
  } else {
    const scaled = scaleTo8(nativeView(bytes, dtype))
    data = scaled.data
    range = scaled.range
  }

  if (mode === 'RGBX') {
    data = dropFourth(data as Uint8Array, pixels)
    channels = 3
  } else if (needsRgbConversion(mode)) {
    data = toRgb(mode, data as Uint8Array, pixels) as Uint8Array
    channels = 3
  }
  if (channels < 1 || channels > 4) {
    throw new NotEncodable(`${channels} channels; a picture has 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)`)
  }
  return { data, width, height, channels: channels as Raster['channels'], sixteen, range }
}

/** The samples as a host-order typed array: a view when possible, else a (byte-swapped, aligned) copy. */
function nativeView (bytes: Uint8Array, dtype: DType): ArrayLike<number | bigint> {
  const size = dtype.itemSize
  const count = bytes.byteLength / size
  let source = bytes
  if (dtype.littleEndian === false) {
    source = new Uint8Array(bytes.byteLength)
    for (let i = 0; i < bytes.byteLength; i += size) {
      for (let k = 0; k < size; k++) source[i + k] = bytes[i + size - 1 - k]
    }
  } else if (bytes.byteOffset % size !== 0) {
    source = bytes.slice()
  }
  const View = NATIVE[dtype.typestr.slice(1)]
  return new View(source.buffer, source.byteOffset, count)
}

type NativeArray = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayLike<number | bigint>

const NATIVE: Readonly<Record<string, NativeArray>> = {
  u1: Uint8Array, i1: Int8Array, u2: Uint16Array, i2: Int16Array, u4: Uint32Array, i4: Int32Array,
  f4: Float32Array, f8: Float64Array, u8: BigUint64Array, i8: BigInt64Array,
}

/** Linear min..max → 0..255 over the finite values (protocol/colour.ts). */
function scaleTo8 (samples: ArrayLike<number | bigint>): { data: Uint8Array, range: [number, number] } {
  const values = typeof samples[0] === 'bigint' ? Float64Array.from(samples as ArrayLike<bigint>, Number) : samples as ArrayLike<number>
  const { levels, range } = stretchTo8(values)
  return { data: levels, range }
}

function dropFourth (src: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3)
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += 4, o += 3) {
    out[o] = src[i]
    out[o + 1] = src[i + 1]
    out[o + 2] = src[i + 2]
  }
  return out
}
