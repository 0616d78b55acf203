/**
 * How a sample becomes an 8-bit level, and a Pillow colour mode becomes RGB: one definition for everything
 * that shows an image — the server's pictures (server/formats/raster.ts: PNG, JPEG, WebP, TIFF) and the
 * viewer's canvas (viewer/pixels.ts). test/viewer/colour.test.ts checks, in Chromium, that the canvas
 * equals the server's PNG for every mode.
 *
 * The choices (docs/http.md "How images become pictures"):
 * - 16-bit unsigned to 8 bits: `round(v / 257)`, the nearest level (65535 → 255, 257·k → k exactly);
 *   truncating to the high byte (`v >>> 8`) would darken every level by up to one step.
 * - Dtypes without a fixed white (I, F, signed, 32/64-bit): stretched linearly from the finite min..max
 *   over all channels together; NaN and −∞ → 0, +∞ → 255, a constant image → 0.
 * - CMYK, YCbCr, HSV: Pillow's formulas. LAB: CIE L*a*b* under D65 to sRGB, the colour the numbers
 *   mean (showing lightness only would hide a* and b*, and disagree with every exported picture).
 * No colour management beyond that (no ICC profiles).
 */

/** 8-bit samples that a converter writes to; the viewer's canvas uses a clamped array. */
export type Levels = Uint8Array | Uint8ClampedArray

/** A 16-bit unsigned sample as the nearest 8-bit level. */
export function level16 (value: number): number {
  return Math.round(value / 257)
}

/**
 * Samples without a fixed white level as 0-255 levels, stretched from the finite minimum to the finite
 * maximum; `range` is that [min, max] ([0, 0] when no sample is finite), so a client can undo it.
 */
export function stretchTo8 (values: ArrayLike<number>): { levels: Uint8Array, range: [number, number] } {
  const n = values.length
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < n; i++) {
    const v = values[i]
    if (v < min && v !== -Infinity) min = v
    if (v > max && v !== Infinity) max = v
  }
  const levels = new Uint8Array(n)
  if (min > max) min = max = 0
  const k = max > min ? 255 / (max - min) : 0
  for (let i = 0; i < n; i++) {
    const v = values[i]
    // NaN fails every comparison and stays 0; a constant image (k = 0) is 0 but for +∞.
    if (v === Infinity) levels[i] = 255
    else if (k !== 0 && v >= max) levels[i] = 255
    else if (k !== 0 && v > min) levels[i] = Math.round((v - min) * k)
  }
  return { levels, range: [min, max] }
}

function clamp8 (v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v)
}

/** Converts `pixels` pixels of `src` (`srcStep` bytes apart) to RGB in `dst` (`dstStep` bytes apart). */
type Converter = (src: Uint8Array, srcStep: number, dst: Levels, dstStep: number, pixels: number) => void

/** Pillow's naive CMYK: R = (255 − C)(255 − K) / 255, likewise G and B. */
const cmyk: Converter = (src, srcStep, dst, dstStep, pixels) => {
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += srcStep, o += dstStep) {
    const nk = 255 - src[i + 3]
    dst[o] = clamp8((255 - src[i]) * nk / 255)
    dst[o + 1] = clamp8((255 - src[i + 1]) * nk / 255)
    dst[o + 2] = clamp8((255 - src[i + 2]) * nk / 255)
  }
}

/** JPEG/JFIF full-range YCbCr (ITU-R BT.601 coefficients). */
const ycbcr: Converter = (src, srcStep, dst, dstStep, pixels) => {
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += srcStep, o += dstStep) {
    const y = src[i]
    const cb = src[i + 1] - 128
    const cr = src[i + 2] - 128
    dst[o] = clamp8(y + 1.402 * cr)
    dst[o + 1] = clamp8(y - 0.344136 * cb - 0.714136 * cr)
    dst[o + 2] = clamp8(y + 1.772 * cb)
  }
}

/** Pillow's HSV: hue 0-255 for 0-360°, saturation and value 0-255. */
const hsv: Converter = (src, srcStep, dst, dstStep, pixels) => {
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += srcStep, o += dstStep) {
    const h = (src[i] / 255) * 6
    const s = src[i + 1] / 255
    const v = src[i + 2]
    const sector = Math.floor(h) % 6
    const f = h - Math.floor(h)
    const a = v * (1 - s)
    const b = v * (1 - s * f)
    const c = v * (1 - s * (1 - f))
    const [r, g, bl] = [[v, c, a], [b, v, a], [a, v, c], [a, b, v], [c, a, v], [v, a, b]][sector]
    dst[o] = clamp8(r)
    dst[o + 1] = clamp8(g)
    dst[o + 2] = clamp8(bl)
  }
}

const D65 = [0.95047, 1, 1.08883] as const

function labInverse (t: number): number {
  return t > 6 / 29 ? t * t * t : 3 * (6 / 29) ** 2 * (t - 4 / 29)
}

function srgbGamma (linear: number): number {
  const c = linear <= 0.0031308 ? 12.92 * linear : 1.055 * linear ** (1 / 2.4) - 0.055
  return clamp8(c * 255)
}

/** 8-bit L*a*b*: L 0-255 for 0-100, a and b signed bytes (as numpy sees a Pillow LAB image); D65 white. */
const lab: Converter = (src, srcStep, dst, dstStep, pixels) => {
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += srcStep, o += dstStep) {
    const l = (src[i] / 255) * 100
    const a = (src[i + 1] << 24) >> 24
    const b = (src[i + 2] << 24) >> 24
    const fy = (l + 16) / 116
    const x = D65[0] * labInverse(fy + a / 500)
    const y = D65[1] * labInverse(fy)
    const z = D65[2] * labInverse(fy - b / 200)
    dst[o] = srgbGamma(3.2404542 * x - 1.5371385 * y - 0.4985314 * z)
    dst[o + 1] = srgbGamma(-0.969266 * x + 1.8760108 * y + 0.041556 * z)
    dst[o + 2] = srgbGamma(0.0556434 * x - 0.2040259 * y + 1.0572252 * z)
  }
}

const TO_RGB: Readonly<Record<string, { converter: Converter, channels: number }>> = {
  CMYK: { converter: cmyk, channels: 4 },
  YCbCr: { converter: ycbcr, channels: 3 },
  HSV: { converter: hsv, channels: 3 },
  LAB: { converter: lab, channels: 3 },
}

/** True for the modes whose channels are not red, green, blue (CMYK, YCbCr, HSV, LAB): `toRgb` converts them. */
export function needsRgbConversion (mode: string | null | undefined): mode is string {
  return typeof mode === 'string' && Object.hasOwn(TO_RGB, mode)
}

/**
 * Packed 8-bit pixels of `mode` (CMYK, YCbCr, HSV or LAB) as RGB: into `dst` at `dstStep` bytes a pixel
 * (3 for packed RGB, 4 to fill an RGBA buffer, whose alpha is left as it is), or a new packed RGB array.
 */
export function toRgb (mode: string, src: Uint8Array, pixels: number, dst: Levels = new Uint8Array(pixels * 3), dstStep = 3): Levels {
  const { converter, channels } = TO_RGB[mode]
  converter(src, channels, dst, dstStep, pixels)
  return dst
}
