/**
 * Image specs: turning what a client asks for (`{ width, height, mode }` or `{ shape, typestr }`) into one
 * normalised description with its byte size, checked against explicit limits.
 */
import { dtypeOf, type DType } from './dtypes.js'
import { pxpError, textOf } from './errors.js'
import { MAX_NDIM } from './layout.js'
import { inferMode, modeOf, modeShape, type ModeSpec } from './modes.js'

export type Layout = 'block' | 'lines'

/** What a client sends to create an image. */
export interface CreateRequest {
  width?: number
  height?: number
  mode?: string
  shape?: number[]
  typestr?: string
  id?: string
  layout?: Layout
  readonly?: boolean
  /**
   * Frame buffers for loan/publish writers (1 = plain image). With 2 or more, a producer writes the next
   * frame into a loaned buffer while readers keep the published one.
   */
  frames?: number
}

/** A validated, normalised image spec. */
export interface ImageSpec {
  readonly shape: readonly number[]
  readonly dtype: DType
  /** The Pillow mode, when the shape and typestr are one (inferred for raw uploads). */
  readonly mode: ModeSpec | null
  readonly width: number
  readonly height: number
  readonly channels: number
  /** Bytes of one row in C order. */
  readonly rowBytes: number
  readonly byteLength: number
}

export interface SpecLimits {
  /** Largest value of any one dimension. */
  maxDimension: number
  /** Largest image in bytes. */
  maxImageBytes: number
}

export const DEFAULT_SPEC_LIMITS: SpecLimits = {
  maxDimension: 1 << 16,
  maxImageBytes: 1024 * 1024 * 1024,
}

function checkDim (name: string, value: unknown, limits: SpecLimits): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > limits.maxDimension) {
    throw pxpError('PXP_ERR_BAD_SHAPE', `${name} must be an integer from 1 to ${limits.maxDimension}, got ${shown(value)}`)
  }
  return value
}

function checkLength (value: unknown, dtype: DType, limits: SpecLimits): number {
  const max = Math.floor(limits.maxImageBytes / dtype.itemSize)
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw pxpError('PXP_ERR_BAD_SHAPE', `shape[0] must be a positive integer, got ${shown(value)}`)
  }
  if (value > max) throw pxpError('PXP_ERR_TOO_LARGE', value * dtype.itemSize, limits.maxImageBytes)
  return value
}

/** JSON of what a client sent, for a message; never throws (JSON.stringify does on a BigInt or a cycle). */
function shown (value: unknown): string {
  try {
    return textOf(JSON.stringify(value))
  } catch {
    return textOf(value)
  }
}

/**
 * Validate a create request into an ImageSpec. `mode` wins when given; otherwise `shape` + `typestr`
 * (shape is `[h, w]` or `[h, w, c]`, or any 1-8 dimensional array whose first two axes are rows and columns;
 * a 1-D shape may be as long as the byte limit allows, other dimensions are at most `maxDimension`).
 */
export function specFromRequest (req: CreateRequest, limits: SpecLimits = DEFAULT_SPEC_LIMITS): ImageSpec {
  if (req.mode !== undefined && req.mode !== null) {
    if (req.shape !== undefined || req.typestr !== undefined) {
      throw pxpError('PXP_ERR_VALIDATION', 'give either { width, height, mode } or { shape, typestr }, not both')
    }
    const mode = modeOf(req.mode)
    const width = checkDim('width', req.width, limits)
    const height = checkDim('height', req.height, limits)
    return makeSpec(modeShape(mode, width, height), dtypeOf(mode.typestr), mode, limits)
  }
  if (req.shape !== undefined || req.typestr !== undefined) {
    if (req.width !== undefined || req.height !== undefined) {
      throw pxpError('PXP_ERR_VALIDATION', 'give either { width, height, mode } or { shape, typestr }, not both')
    }
    if (!Array.isArray(req.shape) || req.shape.length < 1 || req.shape.length > MAX_NDIM) {
      throw pxpError('PXP_ERR_BAD_SHAPE', `shape must be an array of 1 to ${MAX_NDIM} dimensions`)
    }
    if (typeof req.typestr !== 'string') throw pxpError('PXP_ERR_VALIDATION', 'typestr is required with shape')
    const dtype = dtypeOf(req.typestr)
    // A 1-D array (a tensor, a signal) is limited by bytes alone; every dimension of a 2-D or larger
    // array by maxDimension as well, which keeps rows and pictures within what formats and views handle.
    const shape = req.shape.length === 1
      ? [checkLength(req.shape[0], dtype, limits)]
      : req.shape.map((d, i) => checkDim(`shape[${i}]`, d, limits))
    return makeSpec(shape, dtype, inferMode(shape, dtype.typestr), limits)
  }
  throw pxpError('PXP_ERR_VALIDATION', 'give { width, height, mode } or { shape, typestr }')
}

/** Build a spec from a shape and dtype (used for views and copies too). */
export function makeSpec (shape: readonly number[], dtype: DType, mode: ModeSpec | null, limits: SpecLimits = DEFAULT_SPEC_LIMITS): ImageSpec {
  const height = shape[0]
  const width = shape.length >= 2 ? shape[1] : 1
  let channels = 1
  for (let i = 2; i < shape.length; i++) channels *= shape[i]
  // Multiply in floating point and compare before anything is allocated: no overflow can sneak past.
  const byteLength = shape.reduce((n, d) => n * d, dtype.itemSize)
  if (byteLength > limits.maxImageBytes) throw pxpError('PXP_ERR_TOO_LARGE', byteLength, limits.maxImageBytes)
  return Object.freeze({
    shape: Object.freeze([...shape]),
    dtype,
    mode,
    width,
    height,
    channels,
    rowBytes: byteLength / height,
    byteLength,
  })
}

/** C-order byte strides for a shape. */
export function cStrides (shape: readonly number[], itemSize: number): number[] {
  const strides = new Array<number>(shape.length)
  let s = itemSize
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s
    s *= shape[i]
  }
  return strides
}

export function isCContiguous (shape: readonly number[], strides: readonly number[], itemSize: number): boolean {
  const c = cStrides(shape, itemSize)
  return shape.every((d, i) => d === 1 || strides[i] === c[i])
}
