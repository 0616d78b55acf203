/**
 * Pixelport images to picture files (PNG, JPEG, WebP, TIFF), with sharp.
 *
 * `raster.ts` decides what the samples become; this module only hands the raster to the encoder with the
 * colour space that stops sharp from converting it again (its default output is 8-bit sRGB), and the
 * per-format settings: PNG with adaptive row filters at zlib level 3 (measured on gradients with camera-like
 * noise: at 640x480 as fast as unfiltered level 3 or 6 and 2-8x smaller; at 3840x2160 up to 1.6x slower and
 * 1.3-6x smaller), JPEG/WebP quality 90 unless asked, TIFF LZW (lossless, read everywhere). JPEG has no
 * alpha: it is dropped, not composited.
 *
 * WebP effort 1 by default, not libwebp's 4: a 7200x4860 RGBA picture took 32.6 s at effort 4 and 6.4 s
 * at effort 1 here (sharp runs one libvips thread on this 2-core machine), for a file 2% larger.
 * `?effort=4` (up to 6) asks for the smaller, slower file.
 *
 * A derivation (derive.ts) crops and resizes the raster before it is encoded.
 */
import type { Sharp } from 'sharp'
import { loadSharp } from './sharp.js'
import type { Derivation } from './derive.js'
import { FORMATS, type ImageFormat } from './formats.js'
import { NotEncodable, toRaster, type PixelSource, type Raster } from './raster.js'

export interface EncodeOptions {
  /** JPEG and WebP quality, 1-100. Default 90. */
  quality?: number
  /** WebP: lossless instead of lossy. Default false. */
  lossless?: boolean
  /** WebP: libwebp's effort, 0 (fastest) to 6 (smallest). Default DEFAULT_WEBP_EFFORT. */
  effort?: number
}

export interface Encoded {
  readonly bytes: Buffer
  /** Samples in the file are 16-bit. */
  readonly sixteen: boolean
  /** The source range that was scaled to 0..255, when it was (float and integer images). */
  readonly range: readonly [number, number] | null
}

export const DEFAULT_QUALITY = 90
export const DEFAULT_WEBP_EFFORT = 1
const PNG_LEVEL = 3

/**
 * Encode `bytes` (C order, exactly the image's byte length) of an image described by `source` as `format`.
 * Throws NotEncodable for images the format cannot hold (shape, channel count, size).
 */
export async function encodeImage (source: PixelSource, bytes: Uint8Array, format: ImageFormat, options: EncodeOptions = {}, derivation: Derivation | null = null): Promise<Encoded> {
  const info = FORMATS[format]
  const raster = toRaster(source, bytes, info.sixteenBit)
  const width = derivation?.width ?? raster.width
  const height = derivation?.height ?? raster.height
  if (width > info.maxDimension || height > info.maxDimension) {
    throw new NotEncodable(`${width}x${height} exceeds the ${format} limit of ${info.maxDimension} pixels a side`)
  }
  return { bytes: await encodeRaster(raster, format, options, derivation), sixteen: raster.sixteen, range: raster.range }
}

function colourspaceOf (raster: Raster): string {
  if (raster.channels <= 2) return raster.sixteen ? 'grey16' : 'b-w'
  return raster.sixteen ? 'rgb16' : 'srgb'
}

async function encodeRaster (raster: Raster, format: ImageFormat, options: EncodeOptions, derivation: Derivation | null): Promise<Buffer> {
  const quality = options.quality ?? DEFAULT_QUALITY
  // Our own memory, already within our limits: no pixel limit.
  const sharp = await loadSharp()
  let image: Sharp = sharp(raster.data, {
    raw: { width: raster.width, height: raster.height, channels: raster.channels },
    limitInputPixels: false,
  })
  // extract() before resize() crops first; `contain` pads with transparent pixels (black where no alpha).
  if (derivation?.crop != null) image = image.extract(derivation.crop)
  if (derivation?.resize != null) {
    const { width, height, fit } = derivation.resize
    image = image.resize({ width, height, fit, background: { r: 0, g: 0, b: 0, alpha: 0 } })
  }
  image = image.toColourspace(colourspaceOf(raster))
  switch (format) {
    case 'png':
      image = image.png({ compressionLevel: PNG_LEVEL, adaptiveFiltering: true })
      break
    case 'jpeg':
      if (raster.channels === 2 || raster.channels === 4) image = image.removeAlpha()
      image = image.jpeg({ quality })
      break
    case 'webp':
      // exact: lossless keeps the colour of fully transparent pixels too (libwebp would otherwise clear it).
      image = image.webp(options.lossless === true
        ? { lossless: true, exact: true, effort: options.effort ?? DEFAULT_WEBP_EFFORT }
        : { quality, effort: options.effort ?? DEFAULT_WEBP_EFFORT })
      break
    case 'tiff':
      image = image.tiff({ compression: 'lzw' })
      break
  }
  return await image.toBuffer()
}
