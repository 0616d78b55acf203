/**
 * The rows of a line-based image (stored row by row in whatever free runs there were) and its staging.
 *
 * Rows are zero-copy. `data` cannot be: it is a contiguous copy, gathered under the seqlock and cached per
 * generation. A write gathers the rows into a staging copy, lets the caller change it, and scatters it back
 * (all under the write lock, which the caller holds).
 */
import type { RowSegment } from '../../protocol/descriptor.js'
import type { DType, TypedArray } from '../../protocol/dtypes.js'
import { SLOT, slotBase } from '../../protocol/layout.js'

export class LineRows {
  /** Inside write(): the staging copy the image's accessors read and write. */
  staging: TypedArray | null = null
  private readonly rows: Uint8Array[] = []
  private cache: { generation: number, data: TypedArray } | null = null

  /** `control`: the slot holding the seqlock and generation. */
  constructor (
    segments: RowSegment[],
    rowBytes: number,
    blocks: (index: number) => SharedArrayBuffer,
    private readonly dtype: DType,
    private readonly words: Int32Array,
    private readonly control: number,
  ) {
    for (const s of segments) {
      const buffer = blocks(s.block)
      for (let r = 0; r < s.rows; r++) this.rows.push(new Uint8Array(buffer, s.byteOffset + r * rowBytes, rowBytes))
    }
  }

  /** The bytes of row `y`, in shared memory. */
  row (y: number): Uint8Array {
    return this.rows[y]
  }

  /** A contiguous copy of one consistent generation, cached until the next. */
  copy (): TypedArray {
    const words = this.words
    const base = slotBase(this.control)
    for (;;) {
      const s1 = Atomics.load(words, base + SLOT.SEQ)
      if ((s1 & 1) !== 0) {
        Atomics.wait(words, base + SLOT.SEQ, s1, 5)
        continue
      }
      const generation = Atomics.load(words, base + SLOT.GENERATION) >>> 0
      if (this.cache?.generation === generation) return this.cache.data
      const data = this.gather()
      if (Atomics.load(words, base + SLOT.SEQ) === s1) {
        this.cache = { generation, data }
        return data
      }
    }
  }

  /** Run `fn` on a staging copy of the rows, then write it back. The caller holds the write lock. */
  write (fn: (staging: TypedArray) => void): void {
    const staging = this.gather()
    this.staging = staging
    try {
      fn(staging)
    } finally {
      this.staging = null
    }
    this.scatter(staging)
  }

  private gather (): TypedArray {
    const rows = this.rows
    const rowBytes = rows[0].byteLength
    const out = new Uint8Array(rowBytes * rows.length)
    for (let y = 0; y < rows.length; y++) out.set(rows[y], y * rowBytes)
    return new this.dtype.array(out.buffer, 0, out.byteLength / this.dtype.itemSize)
  }

  private scatter (staging: TypedArray): void {
    const rows = this.rows
    const bytes = new Uint8Array(staging.buffer, staging.byteOffset, staging.byteLength)
    const rowBytes = rows[0].byteLength
    for (let y = 0; y < rows.length; y++) rows[y].set(bytes.subarray(y * rowBytes, (y + 1) * rowBytes))
  }
}
