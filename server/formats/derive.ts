/**
 * Derived pictures: a crop rectangle and a resize applied to an image before it is encoded
 * (`GET /images/:id.png?width=96&height=72&fit=inside`, `?x=10&y=20&w=64&h=64`).
 *
 * The crop is taken first (in the image's own pixels), then the result is resized with one of sharp's fits.
 * Both are checked here against the image, so a bad request is refused before anything is copied or encoded:
 * a crop outside the image is PXP_ERR_BAD_REGION, an output larger than the limits PXP_ERR_VALIDATION.
 */
import { pxpError } from '../../protocol/errors.js'

export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const
export type Fit = typeof FITS[number]

/** Largest output width or height a resize may ask for. */
export const MAX_SIDE = 8192
/**
 * Most pixels a resize may produce: a resize never makes more pixels than this or than the (cropped) source
 * has, whichever is more, so a tiny image cannot be blown up into a huge encode.
 */
export const MAX_RESIZE_PIXELS = 4096 * 4096

/** The query parameters, as the route schema has already typed and range-checked them. */
export interface DeriveQuery {
  width?: number
  height?: number
  fit?: Fit
  x?: number
  y?: number
  w?: number
  h?: number
}

export interface Crop { left: number, top: number, width: number, height: number }
export interface Resize { width: number | undefined, height: number | undefined, fit: Fit }

/** What to do to the raster before encoding; null members mean "not asked for". */
export interface Derivation {
  crop: Crop | null
  resize: Resize | null
  /** Width and height of the picture that results. */
  width: number
  height: number
}

/**
 * Check `query` against an image of `width`×`height` (`id` names it in errors) and plan the derivation.
 * A crop takes any of x, y, w, h: x and y default to 0, w and h to the rest of the image.
 */
export function planDerivation (query: DeriveQuery, id: string, width: number, height: number): Derivation {
  let crop: Crop | null = null
  let cw = width
  let ch = height
  if (query.x !== undefined || query.y !== undefined || query.w !== undefined || query.h !== undefined) {
    const left = query.x ?? 0
    const top = query.y ?? 0
    const w = query.w ?? width - left
    const h = query.h ?? height - top
    if (w < 1 || h < 1 || left + w > width || top + h > height) {
      throw pxpError('PXP_ERR_BAD_REGION', `{x:${left},y:${top},w:${w},h:${h}}`, id, `${width}x${height}`)
    }
    crop = { left, top, width: w, height: h }
    cw = w
    ch = h
  }
  if (query.width === undefined && query.height === undefined) {
    if (query.fit !== undefined) throw pxpError('PXP_ERR_VALIDATION', 'fit needs width or height')
    return { crop, resize: null, width: cw, height: ch }
  }
  const fit = query.fit ?? 'inside'
  const [ow, oh] = outputSize(cw, ch, query.width, query.height, fit)
  if (ow > MAX_SIDE || oh > MAX_SIDE) {
    throw pxpError('PXP_ERR_VALIDATION', `the picture would be ${ow}x${oh}; a resize gives at most ${MAX_SIDE} pixels a side`)
  }
  if (ow * oh > Math.max(MAX_RESIZE_PIXELS, cw * ch)) {
    throw pxpError('PXP_ERR_VALIDATION', `the picture would be ${ow}x${oh}; a resize gives at most ${MAX_RESIZE_PIXELS} pixels or the source's ${cw * ch}, whichever is more`)
  }
  return { crop, resize: { width: query.width, height: query.height, fit }, width: ow, height: oh }
}

/** The size sharp's resize gives a `cw`×`ch` raster for the requested box and fit. */
function outputSize (cw: number, ch: number, width: number | undefined, height: number | undefined, fit: Fit): [number, number] {
  if (width === undefined) return [Math.max(1, Math.round(cw * height! / ch)), height!]
  if (height === undefined) return [width, Math.max(1, Math.round(ch * width / cw))]
  if (fit === 'fill' || fit === 'cover' || fit === 'contain') return [width, height]
  const scale = fit === 'inside' ? Math.min(width / cw, height / ch) : Math.max(width / cw, height / ch)
  return [Math.max(1, Math.round(cw * scale)), Math.max(1, Math.round(ch * scale))]
}

/** A stable text of the derivation, for cache keys. */
export function derivationKey (d: Derivation): string {
  const crop = d.crop === null ? '' : `${d.crop.left},${d.crop.top},${d.crop.width},${d.crop.height}`
  const resize = d.resize === null ? '' : `${d.resize.width ?? ''}x${d.resize.height ?? ''}:${d.resize.fit}`
  return `${crop}/${resize}`
}
