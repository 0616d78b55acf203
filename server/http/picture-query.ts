/**
 * The query parameters of `GET /images/:id.<format>`: the encoder settings each format takes, and the crop
 * and resize every format takes (server/formats/derive.ts applies them). Anything else is PXP_ERR_VALIDATION.
 */
import { DEFAULT_QUALITY, DEFAULT_WEBP_EFFORT } from '../formats/encode.js'
import { FITS, MAX_SIDE } from '../formats/derive.js'
import type { ImageFormat } from '../formats/formats.js'

const quality = { type: 'integer', minimum: 1, maximum: 100, description: `Lossy quality, default ${DEFAULT_QUALITY}` } as const
const side = (what: string): object => ({ type: 'integer', minimum: 1, maximum: MAX_SIDE, description: `${what} of the picture, 1-${MAX_SIDE}` })
const corner = (what: string): object => ({ type: 'integer', minimum: 0, maximum: 2 ** 31 - 1, description: `Crop: ${what}, default 0` })
const extent = (what: string): object => ({ type: 'integer', minimum: 1, maximum: 2 ** 31 - 1, description: `Crop: ${what}, default the rest of the image` })

const DERIVE = {
  width: side('Width'),
  height: side('Height'),
  fit: { type: 'string', enum: FITS, description: 'How the picture fills width x height (sharp\'s resize fits), default inside' },
  x: corner('left column'),
  y: corner('top row'),
  w: extent('width'),
  h: extent('height'),
} as const

const ENCODER: Readonly<Record<ImageFormat, object>> = {
  png: {},
  tiff: {},
  jpeg: { quality },
  webp: {
    quality,
    lossless: { type: 'boolean', description: 'Lossless WebP (slower, larger); default lossy' },
    effort: { type: 'integer', minimum: 0, maximum: 6, description: `libwebp effort, 0 (fastest) to 6 (smallest); default ${DEFAULT_WEBP_EFFORT}` },
  },
}

/** The querystring schema of one format's picture route. */
export function pictureQuery (format: ImageFormat): object {
  return { type: 'object', additionalProperties: false, properties: { ...ENCODER[format], ...DERIVE } }
}
