/**
 * Reassembling a streamed frame (`frame`, `chunk`…, `end`) into one buffer and a TypedArray view of it.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { typedArrayFor } from '../../protocol/descriptor.js'
import { dtypeOf, type TypedArray } from '../../protocol/dtypes.js'
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
  /** `bytes` as a TypedArray of the image's dtype (raw bytes for big-endian dtypes; a copy when `bytes` was not aligned). */
  data: TypedArray
}

/**
 * `bytes` as a TypedArray of `typestr`: protocol's typedArrayFor, which copies once when the bytes are not
 * aligned for the dtype. Big-endian dtypes have no host-order view: their data is the raw bytes.
 */
export function typedView (typestr: string, bytes: Uint8Array): TypedArray {
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return dtypeOf(typestr).native ? typedArrayFor({ typestr }, plain) : plain
}

export class FrameAssembler {
  private buffer: Uint8Array | null = null
  private single: Uint8Array | null = null
  private received = 0

  /** `into`: where to put the bytes (at least byteLength of them), instead of a new buffer. */
  constructor (readonly header: FrameMessage, private readonly into?: Uint8Array) {
    if (into !== undefined && into.byteLength < header.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', header.byteLength, into.byteLength)
  }

  add (chunk: ChunkMessage): void {
    this.addParts(chunk.offset, [chunk.data], chunk.data.byteLength)
  }

  /** A chunk whose payload arrived in pieces (WebSocket fragments): `length` bytes at `offset`. */
  addParts (offset: number, parts: readonly Uint8Array[], length: number): void {
    const { byteLength, chunks } = this.header
    let sum = 0
    for (const p of parts) sum += p.byteLength
    if (offset !== this.received || sum !== length || offset + length > byteLength) {
      throw pxpError('PXP_ERR_PROTOCOL', `stream ${this.header.stream}: chunk at ${offset} of ${sum} bytes, expected offset ${this.received} within ${byteLength}`)
    }
    if (chunks === 1 && parts.length === 1 && this.into === undefined && length === byteLength) {
      // The whole frame in one piece: its bytes as received, no copy.
      this.single = parts[0]
    } else {
      // Copied as they arrive, into memory the client keeps: one copy, and never more than one frame held.
      const buffer = this.buffer ??= this.into?.subarray(0, byteLength) ?? new Uint8Array(byteLength)
      let at = offset
      for (const p of parts) {
        buffer.set(p, at)
        at += p.byteLength
      }
    }
    this.received += length
  }

  finish (): RemoteFrame {
    const { header } = this
    const received = this.buffer ?? this.single
    if (this.received !== header.byteLength || received === null) throw pxpError('PXP_ERR_BYTE_COUNT', header.byteLength, this.received)
    // A plain Uint8Array, not a Node.js Buffer (whose slice() does not copy when an unaligned view needs one).
    const bytes = new Uint8Array(received.buffer, received.byteOffset, received.byteLength)
    return {
      descriptor: header.descriptor,
      generation: header.generation,
      region: header.region,
      shape: header.shape,
      bytes,
      data: typedView(header.typestr, bytes),
    }
  }
}
