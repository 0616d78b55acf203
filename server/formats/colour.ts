/**
 * 8-bit colour-space conversions to RGB for the Pillow modes a picture format cannot hold as they are
 * (CMYK, YCbCr, HSV, LAB). Each takes packed 3- or 4-byte pixels and returns packed RGB. No colour
 * management: the same formulas Pillow's own `convert('RGB')` uses (LAB: CIE L*a*b* under D65).
 */

type Converter = (src: Uint8Array, dst: Uint8Array, pixels: number) => void

function clamp8 (v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v)
}

/** Pillow's naive CMYK: R = (255 − C)(255 − K) / 255. */
const cmyk: Converter = (src, dst, pixels) => {
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += 4, o += 3) {
    const nk = 255 - src[i + 3]
    dst[o] = clamp8((255 - src[i]) * nk / 255)
    dst[o + 1] = clamp8((255 - src[i + 1]) * nk / 255)
    dst[o + 2] = clamp8((255 - src[i + 2]) * nk / 255)
  }
}

/** JPEG/JFIF full-range YCbCr (ITU-R BT.601 coefficients). */
const ycbcr: Converter = (src, dst, pixels) => {
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const y = src[i]
    const cb = src[i + 1] - 128
    const cr = src[i + 2] - 128
    dst[i] = clamp8(y + 1.402 * cr)
    dst[i + 1] = clamp8(y - 0.344136 * cb - 0.714136 * cr)
    dst[i + 2] = clamp8(y + 1.772 * cb)
  }
}

/** Pillow's HSV: hue 0-255 for 0-360°, saturation and value 0-255. */
const hsv: Converter = (src, dst, pixels) => {
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const h = (src[i] / 255) * 6
    const s = src[i + 1] / 255
    const v = src[i + 2]
    const sector = Math.floor(h) % 6
    const f = h - Math.floor(h)
    const a = v * (1 - s)
    const b = v * (1 - s * f)
    const c = v * (1 - s * (1 - f))
    const [r, g, bl] = [[v, c, a], [b, v, a], [a, v, c], [a, b, v], [c, a, v], [v, a, b]][sector]
    dst[i] = clamp8(r)
    dst[i + 1] = clamp8(g)
    dst[i + 2] = clamp8(bl)
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

/** 8-bit L*a*b*: L 0-255 for 0-100, a and b signed bytes (as numpy sees a Pillow LAB image). */
const lab: Converter = (src, dst, pixels) => {
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const l = (src[i] / 255) * 100
    const a = (src[i + 1] << 24) >> 24
    const b = (src[i + 2] << 24) >> 24
    const fy = (l + 16) / 116
    const x = D65[0] * labInverse(fy + a / 500)
    const y = D65[1] * labInverse(fy)
    const z = D65[2] * labInverse(fy - b / 200)
    dst[i] = srgbGamma(3.2404542 * x - 1.5371385 * y - 0.4985314 * z)
    dst[i + 1] = srgbGamma(-0.969266 * x + 1.8760108 * y + 0.041556 * z)
    dst[i + 2] = srgbGamma(0.0556434 * x - 0.2040259 * y + 1.0572252 * z)
  }
}

const TO_RGB: Readonly<Record<string, Converter>> = { CMYK: cmyk, YCbCr: ycbcr, HSV: hsv, LAB: lab }

/** True for the modes `toRgb` converts. */
export function needsRgbConversion (mode: string | null): boolean {
  return mode !== null && Object.hasOwn(TO_RGB, mode)
}

/** Packed pixels of `mode` (CMYK, YCbCr, HSV or LAB) as packed 8-bit RGB. */
export function toRgb (mode: string, src: Uint8Array, pixels: number): Uint8Array {
  const dst = new Uint8Array(pixels * 3)
  TO_RGB[mode](src, dst, pixels)
  return dst
}
