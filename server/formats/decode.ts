/**
 * Picture files (PNG, JPEG, WebP, TIFF) to pixels, with sharp.
 *
 * Decoding is split in two so nothing expensive happens before the limits are checked: `planDecode` reads
 * only the file's header and works out the image it will produce (shape, dtype, mode, byte size), which the
 * caller checks and reserves memory for; `decodePixels` then decodes, refusing a file whose pixels do not
 * match its header. Pixels are kept as the file stores them: no colour management (embedded ICC profiles
 * are ignored), no EXIF rotation, 16-bit stays 16-bit, palettes are expanded to RGB/RGBA, first page only.
 */
import type { Metadata, Sharp } from 'sharp'
import { loadSharp } from './sharp.js'
import { pxpError } from '../../protocol/errors.js'
import { specFromRequest, type CreateRequest, type ImageSpec, type SpecLimits } from '../../protocol/spec.js'
import { sniffFormat, type ImageFormat } from './formats.js'

type Depth = 'uchar' | 'char' | 'ushort' | 'short' | 'uint' | 'int' | 'float' | 'double'

/** libvips sample formats and the numpy typestrs they become. Complex samples are refused. */
const TYPESTR_OF_DEPTH: Readonly<Record<Depth, string>> = {
  uchar: '|u1', char: '|i1', ushort: '<u2', short: '<i2', uint: '<u4', int: '<i4', float: '<f4', double: '<f8',
}

/** The image a file will decode to, known from its header alone. */
export interface DecodePlan {
  readonly format: ImageFormat
  /** What to create: `{ width, height, mode }` when a Pillow mode fits, else `{ shape, typestr }`. */
  readonly request: Pick<CreateRequest, 'width' | 'height' | 'mode' | 'shape' | 'typestr'>
  /** The spec that request makes (limits already checked). */
  readonly spec: ImageSpec
  /** Output colour space for sharp: the file's own, so no conversion happens (palettes: srgb). */
  readonly colourspace: string
  /** CMYK must also be the pipeline space, or sharp converts it to sRGB. */
  readonly pipeline: string | null
  readonly depth: Depth
  /** 8-bit grey + alpha: sharp only hands both bands out as RGBA, so keep bands 0 and 3. */
  readonly greyAlpha: boolean
  /**
   * Signed 16-bit samples in a 16-bit colour space: sharp casts those to unsigned (negatives become 0), so
   * they travel offset by 32768 and are shifted back.
   */
  readonly signed16: boolean
}

function badImage (err: unknown): Error {
  const text = err instanceof Error ? err.message : String(err)
  // libvips messages run to several lines, often repeating the same complaint.
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => l !== ''))]
  return pxpError('PXP_ERR_BAD_IMAGE', lines.join(' ').replace(/:$/, '').slice(0, 200))
}

/**
 * Read the header of `file` and work out what it decodes to. Throws PXP_ERR_BAD_IMAGE for anything that
 * is not a readable PNG/JPEG/WebP/TIFF, and the spec errors (PXP_ERR_TOO_LARGE, PXP_ERR_BAD_SHAPE) for an
 * image over the limits, however small the file: a decompression bomb is refused before it is decoded.
 */
export async function planDecode (file: Uint8Array, limits: SpecLimits): Promise<DecodePlan> {
  const format = sniffFormat(file)
  if (format === null) throw pxpError('PXP_ERR_BAD_IMAGE', 'not a PNG, JPEG, WebP or TIFF file')
  let meta: Metadata
  try {
    // The header only. No pixel limit here: our own limits below say what is too large, in our terms.
    meta = await (await loadSharp())(file, { limitInputPixels: false }).metadata()
  } catch (err) {
    throw badImage(err)
  }
  if (meta.format !== format) throw pxpError('PXP_ERR_BAD_IMAGE', `looks like ${format} but decodes as ${String(meta.format)}`)
  const { width, height, channels, space } = meta
  const depth = meta.depth as string
  if (!Object.hasOwn(TYPESTR_OF_DEPTH, depth)) throw pxpError('PXP_ERR_BAD_IMAGE', `unsupported sample format ${depth}`)
  const typestr = TYPESTR_OF_DEPTH[depth as Depth]

  let colourspace: string = space
  let pipeline: string | null = null
  let greyAlpha = false
  const signed16 = depth === 'short' && (space === 'grey16' || space === 'rgb16')
  let request: DecodePlan['request']
  const shaped = (c: number): DecodePlan['request'] => ({ shape: c === 1 ? [height, width] : [height, width, c], typestr })
  if (meta.isPalette) {
    // Palette entries are RGB: expand (Pillow would keep mode P; a palette is of little use to array code).
    colourspace = 'srgb'
    request = shaped(channels)
  } else if (space === 'cmyk') {
    pipeline = 'cmyk'
    request = channels === 4 && depth === 'uchar' ? { width, height, mode: 'CMYK' } : shaped(channels)
  } else if (space === 'b-w' && channels === 2) {
    // sharp writes b-w as its first band only, dropping alpha; RGBA keeps it.
    if (depth !== 'uchar') throw pxpError('PXP_ERR_BAD_IMAGE', `unsupported ${depth} grey with alpha`)
    colourspace = 'srgb'
    greyAlpha = true
    request = shaped(2)
  } else {
    // The file's own interpretation (b-w, grey16, srgb, rgb16, scrgb, lab, multiband, ...): sharp converts
    // nothing when input and output spaces agree. Shape + typestr infer L, LA, RGB, RGBA, I;16, I or F.
    request = shaped(channels)
  }
  return { format, request, spec: specFromRequest(request, limits), colourspace, pipeline, depth: depth as Depth, greyAlpha, signed16 }
}

/**
 * Decode `file` as planned: exactly `plan.spec.byteLength` bytes in C order. Throws PXP_ERR_BAD_IMAGE for
 * corrupt or truncated data, or pixels that do not match the header.
 */
export async function decodePixels (file: Uint8Array, plan: DecodePlan): Promise<Buffer> {
  const { spec } = plan
  const sharp = await loadSharp()
  let pipeline: Sharp = sharp(file, {
    // The header was checked against our limits; the decoder holds the file to the same size.
    limitInputPixels: spec.width * spec.height,
    ignoreIcc: true,
    // Refuse errors (truncation, corrupt data); accept files that merely warn (stray bytes after the end).
    failOn: 'error',
    sequentialRead: true,
  })
  if (plan.pipeline !== null) pipeline = pipeline.pipelineColourspace(plan.pipeline)
  if (plan.signed16) {
    const bands = spec.channels
    pipeline = pipeline.linear(new Array<number>(bands).fill(1), new Array<number>(bands).fill(32768))
  }
  pipeline = pipeline.toColourspace(plan.colourspace).raw({ depth: plan.signed16 ? 'ushort' : plan.depth })
  let data: Buffer
  let channels: number
  try {
    const out = await pipeline.toBuffer({ resolveWithObject: true })
    data = out.data
    channels = out.info.channels
    if (out.info.width !== spec.width || out.info.height !== spec.height) throw new Error('decoded size differs from the header')
  } catch (err) {
    throw badImage(err)
  }
  if (plan.greyAlpha) {
    if (channels !== 4) throw pxpError('PXP_ERR_BAD_IMAGE', `expected grey + alpha, decoded ${channels} channels`)
    data = keepBands03(data)
  }
  if (data.byteLength !== spec.byteLength) {
    throw pxpError('PXP_ERR_BAD_IMAGE', `decoded ${data.byteLength} bytes where the header promises ${spec.byteLength}`)
  }
  if (plan.signed16) {
    // v + 32768 as unsigned has the bits of v as two's complement with the top bit flipped.
    for (let i = 1; i < data.byteLength; i += 2) data[i] ^= 0x80
  }
  return data
}

/** RGBA (grey, grey, grey, alpha) → LA. */
function keepBands03 (rgba: Buffer): Buffer {
  const pixels = rgba.byteLength / 4
  const out = Buffer.allocUnsafe(pixels * 2)
  for (let i = 0, o = 0; i < rgba.byteLength; i += 4, o += 2) {
    out[o] = rgba[i]
    out[o + 1] = rgba[i + 3]
  }
  return out
}
