/**
 * Reassembling a streamed frame (`frame`, `chunk`…, `end`) into one buffer and a TypedArray view of it.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { typedArrayFor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { ChunkMessage, FrameMessage, Region } from '../../protocol/messages.js'

/** The pixels of one generation of an image (or of a region of it), as received. */
export interface RemoteFrame {
  /** The image, with `generation` set to the generation of these bytes. */
  descriptor: ImageDescriptor
  generation: number
  /** The rectangle received, or null for the whole image. */
  region: Region | null
  /** Shape of `data` in C order (the region's shape for a region). */
  shape: number[]
  /** The bytes in C order. */
  bytes: Uint8Array
  /** `bytes` as a TypedArray of the image's dtype (raw bytes for big-endian dtypes). */
  data: TypedArray
}

export class FrameAssembler {
  private buffer: Uint8Array | null = null
  private received = 0

  constructor (readonly header: FrameMessage) {}

  add (chunk: ChunkMessage): void {
    const { byteLength } = this.header
    const data = chunk.data
    if (chunk.offset !== this.received || chunk.offset + data.byteLength > byteLength) {
      throw pxpError('PXP_ERR_PROTOCOL', `stream ${this.header.stream}: chunk at ${chunk.offset} of ${data.byteLength} bytes, expected offset ${this.received} within ${byteLength}`)
    }
    if (this.buffer === null && data.byteLength === byteLength) {
      // The whole frame in one chunk: keep the received bytes, no copy.
      this.buffer = data
    } else {
      this.buffer ??= new Uint8Array(byteLength)
      this.buffer.set(data, chunk.offset)
    }
    this.received += data.byteLength
  }

  finish (): RemoteFrame {
    const { header } = this
    if (this.received !== header.byteLength || this.buffer === null) {
      throw pxpError('PXP_ERR_BYTE_COUNT', header.byteLength, this.received)
    }
    return {
      descriptor: header.descriptor,
      generation: header.generation,
      region: header.region,
      shape: header.shape,
      bytes: this.buffer,
      data: typedArrayFor(header, this.buffer),
    }
  }
}
