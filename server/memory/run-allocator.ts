/**
 * A free-list allocator over one block: sorted free runs, first fit, coalescing on free.
 *
 * It manages offsets only, never memory, so it can be tested against a simple model. Every allocation is
 * rounded to ALIGNMENT bytes and starts on an ALIGNMENT boundary, which satisfies every dtype (and keeps
 * rows of different images off each other's cache lines).
 */

export const ALIGNMENT = 64

export function alignUp (n: number, alignment = ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment
}

export class RunAllocator {
  readonly size: number
  /** Free runs sorted by offset, never adjacent (always coalesced). Parallel arrays keep this cheap. */
  private readonly freeOffsets: number[] = []
  private readonly freeLengths: number[] = []
  /** Live allocations: offset → rounded length. */
  private readonly live = new Map<number, number>()
  private usedBytes = 0

  constructor (size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % ALIGNMENT !== 0) {
      throw new RangeError(`block size must be a positive multiple of ${ALIGNMENT}, got ${size}`)
    }
    this.size = size
    this.freeOffsets.push(0)
    this.freeLengths.push(size)
  }

  get used (): number { return this.usedBytes }
  get freeBytes (): number { return this.size - this.usedBytes }
  get allocationCount (): number { return this.live.size }
  get isEmpty (): boolean { return this.live.size === 0 }

  get largestFreeRun (): number {
    let max = 0
    for (const len of this.freeLengths) if (len > max) max = len
    return max
  }

  /** An independent copy of the bookkeeping (offsets only): to try allocations without changing this one. */
  clone (): RunAllocator {
    const copy = new RunAllocator(this.size)
    copy.freeOffsets.splice(0, copy.freeOffsets.length, ...this.freeOffsets)
    copy.freeLengths.splice(0, copy.freeLengths.length, ...this.freeLengths)
    for (const [offset, length] of this.live) copy.live.set(offset, length)
    copy.usedBytes = this.usedBytes
    return copy
  }

  /** The free runs, for stats and tests. */
  freeRuns (): Array<{ offset: number, length: number }> {
    return this.freeOffsets.map((offset, i) => ({ offset, length: this.freeLengths[i] }))
  }

  /** Allocate `length` bytes; returns the offset, or -1 when no free run is large enough. */
  allocate (length: number): number {
    if (!Number.isFinite(length) || length <= 0) throw new RangeError(`allocation length must be positive, got ${length}`)
    const need = alignUp(length)
    for (let i = 0; i < this.freeOffsets.length; i++) {
      if (this.freeLengths[i] < need) continue
      const offset = this.freeOffsets[i]
      if (this.freeLengths[i] === need) {
        this.freeOffsets.splice(i, 1)
        this.freeLengths.splice(i, 1)
      } else {
        this.freeOffsets[i] += need
        this.freeLengths[i] -= need
      }
      this.live.set(offset, need)
      this.usedBytes += need
      return offset
    }
    return -1
  }

  /**
   * Mark `[offset, offset + length)` (length rounded up) as allocated, as a previous owner of the block had
   * it: adoption rebuilds the free runs from the table. False when any of it is not free (an overlap).
   */
  reserve (offset: number, length: number): boolean {
    const need = alignUp(length)
    if (offset % ALIGNMENT !== 0 || need <= 0) return false
    for (let i = 0; i < this.freeOffsets.length; i++) {
      const start = this.freeOffsets[i]
      const end = start + this.freeLengths[i]
      if (offset < start || offset + need > end) continue
      const pieces: Array<[number, number]> = []
      if (offset > start) pieces.push([start, offset - start])
      if (offset + need < end) pieces.push([offset + need, end - offset - need])
      this.freeOffsets.splice(i, 1, ...pieces.map((p) => p[0]))
      this.freeLengths.splice(i, 1, ...pieces.map((p) => p[1]))
      this.live.set(offset, need)
      this.usedBytes += need
      return true
    }
    return false
  }

  /** Length actually reserved for the allocation at `offset` (its rounded size). */
  lengthOf (offset: number): number | undefined {
    return this.live.get(offset)
  }

  /** Free the allocation at `offset`, merging it with free neighbours. */
  free (offset: number): void {
    const length = this.live.get(offset)
    if (length === undefined) throw new RangeError(`no allocation at offset ${offset}`)
    this.live.delete(offset)
    this.usedBytes -= length
    // Binary search for the first free run after `offset`.
    let lo = 0
    let hi = this.freeOffsets.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.freeOffsets[mid] < offset) lo = mid + 1
      else hi = mid
    }
    const prev = lo - 1
    const mergesPrev = prev >= 0 && this.freeOffsets[prev] + this.freeLengths[prev] === offset
    const mergesNext = lo < this.freeOffsets.length && offset + length === this.freeOffsets[lo]
    if (mergesPrev && mergesNext) {
      this.freeLengths[prev] += length + this.freeLengths[lo]
      this.freeOffsets.splice(lo, 1)
      this.freeLengths.splice(lo, 1)
    } else if (mergesPrev) {
      this.freeLengths[prev] += length
    } else if (mergesNext) {
      this.freeOffsets[lo] = offset
      this.freeLengths[lo] += length
    } else {
      this.freeOffsets.splice(lo, 0, offset)
      this.freeLengths.splice(lo, 0, length)
    }
  }
}
