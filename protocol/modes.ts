/**
 * Pillow image modes and the array-interface shapes Pillow gives them.
 *
 * A mode fixes the channel count and the typestr; shape is `[h, w]` for one channel and `[h, w, c]`
 * otherwise, exactly as `numpy.asarray(pil_image)` produces.
 */
import { pxpError } from './errors.js'

export interface ModeSpec {
  readonly name: string
  /** Stable small integer stored in shared control words (0 means "no mode"). Never renumber. */
  readonly code: number
  readonly channels: number
  readonly typestr: string
}

function mode (name: string, code: number, channels: number, typestr: string): ModeSpec {
  return Object.freeze({ name, code, channels, typestr })
}

const TABLE: readonly ModeSpec[] = [
  mode('1', 1, 1, '|b1'),
  mode('L', 2, 1, '|u1'),
  mode('P', 3, 1, '|u1'),
  mode('LA', 4, 2, '|u1'),
  mode('PA', 5, 2, '|u1'),
  mode('RGB', 6, 3, '|u1'),
  mode('YCbCr', 7, 3, '|u1'),
  mode('LAB', 8, 3, '|u1'),
  mode('HSV', 9, 3, '|u1'),
  mode('RGBA', 10, 4, '|u1'),
  mode('RGBX', 11, 4, '|u1'),
  mode('CMYK', 12, 4, '|u1'),
  mode('I;16', 13, 1, '<u2'),
  mode('I;16B', 14, 1, '>u2'),
  mode('I', 15, 1, '<i4'),
  mode('F', 16, 1, '<f4'),
]

const BY_NAME = new Map(TABLE.map((m) => [m.name, m]))
const BY_CODE = new Map(TABLE.map((m) => [m.code, m]))

export const MODES: readonly ModeSpec[] = TABLE
export const MODE_NAMES: readonly string[] = TABLE.map((m) => m.name)

export function modeOf (name: string): ModeSpec {
  const found = BY_NAME.get(name)
  if (found === undefined) throw pxpError('PXP_ERR_BAD_MODE', name, TABLE.map((m) => m.name).join(', '))
  return found
}

export function modeByCode (code: number): ModeSpec | null {
  return BY_CODE.get(code) ?? null
}

/** Pillow's array-interface shape for an image of this mode. */
export function modeShape (spec: ModeSpec, width: number, height: number): number[] {
  return spec.channels === 1 ? [height, width] : [height, width, spec.channels]
}

/** The mode whose shape and typestr these are, if any (so raw uploads still get a friendly mode). */
export function inferMode (shape: readonly number[], typestr: string): ModeSpec | null {
  const channels = shape.length === 2 ? 1 : shape.length === 3 ? shape[2] : 0
  if (channels === 0) return null
  // Prefer the common mode for a channel count: L, LA, RGB, RGBA.
  const preferred = ['L', 'LA', 'RGB', 'RGBA', 'I;16', 'I;16B', 'I', 'F', '1']
  for (const name of preferred) {
    const m = BY_NAME.get(name)!
    if (m.channels === channels && m.typestr === typestr) return m
  }
  return null
}
