/**
 * An image's bytes as a list of pieces: Uint8Array views over shared memory that, concatenated in order,
 * are the image in C order. A block image is one piece, a line-based image one piece per run of rows, a
 * view one piece per row. Copies in and out, ranges and streams are all written once, over pieces.
 */

export type Pieces = readonly Uint8Array[]

/** Copy all pieces, in order, into `target` (which must be at least their total length). */
export function gather (pieces: Pieces, target: Uint8Array, targetOffset = 0): void {
  let at = targetOffset
  for (const p of pieces) {
    target.set(p, at)
    at += p.byteLength
  }
}

/** Copy `source` into the pieces, in order. */
export function scatter (pieces: Pieces, source: Uint8Array): void {
  let at = 0
  for (const p of pieces) {
    p.set(source.subarray(at, at + p.byteLength))
    at += p.byteLength
  }
}

/** Copy bytes [start, end) of the concatenated pieces into `target`. */
export function gatherRange (pieces: Pieces, start: number, end: number, target: Uint8Array): void {
  let pos = 0
  let out = 0
  for (const p of pieces) {
    const pEnd = pos + p.byteLength
    if (pEnd > start && pos < end) {
      const from = Math.max(start, pos) - pos
      const to = Math.min(end, pEnd) - pos
      target.set(p.subarray(from, to), out)
      out += to - from
    }
    pos = pEnd
    if (pos >= end) break
  }
}

/**
 * Fills pieces sequentially from a stream of chunks of any size: how an upload lands straight in shared
 * memory without an intermediate buffer.
 */
export class PieceWriter {
  private index = 0
  private offset = 0
  private written = 0

  constructor (private readonly pieces: Pieces, readonly total: number) {}

  get bytesWritten (): number { return this.written }

  /** Append `chunk`; returns false (and writes nothing) if it would overflow the image. */
  write (chunk: Uint8Array): boolean {
    if (this.written + chunk.byteLength > this.total) return false
    let from = 0
    while (from < chunk.byteLength) {
      const piece = this.pieces[this.index]
      const n = Math.min(piece.byteLength - this.offset, chunk.byteLength - from)
      piece.set(chunk.subarray(from, from + n), this.offset)
      from += n
      this.offset += n
      if (this.offset === piece.byteLength) {
        this.index++
        this.offset = 0
      }
    }
    this.written += chunk.byteLength
    return true
  }
}
