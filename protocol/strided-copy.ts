/**
 * Copies between C-order pixels and a strided image: a view of a larger image, whose rows start `rowStride`
 * elements apart rather than one row length apart. Element units throughout, so the same functions copy
 * bytes (Uint8Array) or typed elements of one dtype.
 */
import type { TypedArray } from './dtypes.js'

/** How a strided image is laid out: `height` rows of `rowLength` elements, `rowStride` elements apart. */
export interface RowLayout {
  rowLength: number
  height: number
  rowStride: number
}

/** A fresh C-order copy of `data`, laid out as `rows`. */
export function toCOrder<T extends TypedArray> (data: T, rows: RowLayout): T {
  const { rowLength, height, rowStride } = rows
  if (data.length === rowLength * height) return data.slice() as T
  const out = new (data.constructor as new (length: number) => T)(rowLength * height)
  for (let y = 0; y < height; y++) {
    const start = y * rowStride
    ;(out as Uint8Array).set((data as Uint8Array).subarray(start, start + rowLength), y * rowLength)
  }
  return out
}

/** Copy C-order `source` into `target`, laid out as `rows` (same element type). */
export function fromCOrder (source: TypedArray, target: TypedArray, rows: RowLayout): void {
  const { rowLength, height, rowStride } = rows
  if (target.length === source.length) {
    (target as Uint8Array).set(source as Uint8Array)
    return
  }
  for (let y = 0; y < height; y++) {
    (target as Uint8Array).set((source as Uint8Array).subarray(y * rowLength, (y + 1) * rowLength), y * rowStride)
  }
}
