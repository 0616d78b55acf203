/**
 * An image being created: id taken and memory reserved by the store, invisible to everyone until `commit()`.
 * `abort()` gives everything back, so an upload that fails half-way leaves the store exactly as it was.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { ImageSpec } from '../../protocol/spec.js'
import { PieceWriter, type Pieces } from './pixels.js'

export class PendingImage {
  private readonly writer: PieceWriter
  private done = false

  /**
   * @param pieces where the bytes go (the reserved memory, C order)
   * @param onAbort gives back the id and memory
   * @param onCommit makes the image visible; when it throws, `onAbort` runs
   */
  constructor (
    readonly id: string,
    readonly spec: ImageSpec,
    pieces: Pieces,
    private readonly onAbort: () => void,
    private readonly onCommit: () => ImageDescriptor,
  ) {
    this.writer = new PieceWriter(pieces, spec.byteLength)
  }

  get byteLength (): number { return this.spec.byteLength }
  get bytesWritten (): number { return this.writer.bytesWritten }

  /** Append bytes in C order. Throws PXP_ERR_BYTE_COUNT (and aborts) when they overflow the image. */
  write (chunk: Uint8Array): void {
    if (this.done) throw pxpError('PXP_ERR_CLOSED', 'upload')
    if (!this.writer.write(chunk)) {
      const got = this.writer.bytesWritten + chunk.byteLength
      this.abort()
      throw pxpError('PXP_ERR_BYTE_COUNT', this.spec.byteLength, got)
    }
  }

  /** Make the image visible. With bytes written, they must be exactly byteLength. */
  commit (): ImageDescriptor {
    if (this.done) throw pxpError('PXP_ERR_CLOSED', 'upload')
    const written = this.writer.bytesWritten
    if (written !== 0 && written !== this.spec.byteLength) {
      this.abort()
      throw pxpError('PXP_ERR_BYTE_COUNT', this.spec.byteLength, written)
    }
    this.done = true
    try {
      return this.onCommit()
    } catch (err) {
      this.onAbort()
      throw err
    }
  }

  /** Give everything back. Idempotent, and a no-op after a commit. */
  abort (): void {
    if (this.done) return
    this.done = true
    this.onAbort()
  }
}
