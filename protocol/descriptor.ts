/**
 * The image descriptor: numpy's array interface plus Pixelport's own fields.
 *
 * The same object travels as JSON over HTTP, as MessagePack over WebSocket and by structured clone to
 * worker threads. A numpy user fills `__array_interface__.data` with the bytes and calls `numpy.asarray`.
 */
import { dtypeOf, type TypedArray } from './dtypes.js'
import { pxpError } from './errors.js'
import type { Layout } from './spec.js'

/** numpy's array interface, version 3. `data` is `null` over the wire: the bytes travel separately. */
export interface ArrayInterface {
  version: 3
  shape: number[]
  typestr: string
  descr: Array<[string, string]>
  /** `null` when C-contiguous, else byte strides. */
  strides: number[] | null
  /** Byte offset into the buffer named by the descriptor's `base` (only present when non-zero). */
  offset?: number
  data: null
}

/** What happened to an image: the one change vocabulary of the store, its events and every protocol. */
export type ChangeType = 'created' | 'updated' | 'deleted'

/** A run of consecutive rows of a line-based image. */
export interface RowSegment {
  block: number
  byteOffset: number
  rows: number
  /** POSIX shared-memory name of the block (`/dev/shm/<name without the slash>`); null in process memory. */
  segment?: string | null
}

/**
 * Where the control words of an image are, for a process on the same host (the server runs with `--shm`):
 * enough, with docs/shared-memory.md, to map the table and read or write consistently. Descriptors built by
 * the server carry these fields; `table` and `socket` are null when the store is in process memory only.
 */
export interface ControlLocation {
  /** POSIX shared-memory name of the image table, or null when it is not in shared memory. */
  table?: string | null
  /** Index of this image's record in the table. */
  slot?: number
  /** Record that holds SEQ, GENERATION, WRITE_LOCK, FRAMES, FRONT and PINS: the root image's for views. */
  controlSlot?: number
  /** Byte offset of the control record in the table. */
  controlOffset?: number
  /** Path of the Unix socket where processes attach to take leases and locks; null without shm. */
  socket?: string | null
}

/** Where an image's pixels live in the server's memory. */
export type Location =
  | ControlLocation & {
    kind: 'block'
    block: number
    /** Where the current generation starts (frame buffer `frame`). */
    byteOffset: number
    /** Frame buffers (1 for plain images) and the distance between them. */
    frames: number
    frame: number
    frameStride: number
    /** POSIX shared-memory name of the block (`/dev/shm/<name without the slash>`); null in process memory. */
    segment?: string | null
  }
  | ControlLocation & { kind: 'lines', rowBytes: number, segments: RowSegment[] }

export interface ViewInfo {
  /** The image whose memory this view shares. */
  parent: string
  x: number
  y: number
  width: number
  height: number
}

export interface ImageDescriptor {
  id: string
  /** Pillow mode name, or null for a raw shape + typestr. */
  mode: string | null
  width: number
  height: number
  channels: number
  typestr: string
  shape: number[]
  /** Bytes of the image in C order: what `GET /images/:id/data` returns. */
  byteLength: number
  /** Committed writes so far. Bumped on every commit, by any writer. */
  generation: number
  /**
   * True when writes to the buffer this descriptor describes do not reach the image: the image itself is
   * read-only, or the bytes handed out are a converted copy (`copied`).
   */
  readonly: boolean
  /** `block`: one run of memory; `lines`: rows spread over blocks (handed out as a contiguous copy). */
  layout: Layout
  /** True when the bytes you get are a converted contiguous copy, not the original memory. */
  copied: boolean
  /** The image whose buffer `__array_interface__` (strides, offset) refers to: the parent for views. */
  base: string
  view: ViewInfo | null
  location: Location
  __array_interface__: ArrayInterface
  /**
   * Replicas only (absent on an image this node owns): the cluster node that owns the image. This node holds
   * a read-only copy (`copied: true, readonly: true`) pulled from the owner and refreshed when it commits.
   */
  owner?: string
  /** Replicas only: the owner's generation these pixels are a copy of (`generation` counts local refreshes). */
  sourceGeneration?: number
  /**
   * Replicas only: true once the owner's node went down or the owner deleted the image. The pixels stay
   * readable but will not change again; they are not the image's current state.
   */
  stale?: boolean
  /**
   * Only on the descriptor of a `deleted` event, when the server evicted the image to make room for another
   * (`--evict lru`) rather than anyone deleting it.
   */
  evicted?: boolean
}

/** The bytes for `descriptor` as a TypedArray of its dtype (a view, no copy; bytes must be aligned). */
export function typedArrayFor (descriptor: Pick<ImageDescriptor, 'typestr'>, bytes: Uint8Array): TypedArray {
  const dtype = dtypeOf(descriptor.typestr)
  if (bytes.byteLength % dtype.itemSize !== 0) {
    throw pxpError('PXP_ERR_BYTE_COUNT', `a multiple of ${dtype.itemSize}`, bytes.byteLength)
  }
  if (bytes.byteOffset % dtype.itemSize !== 0) {
    // Unaligned (e.g. a view into a network buffer): copy once so the TypedArray is legal.
    bytes = bytes.slice()
  }
  return new dtype.array(bytes.buffer, bytes.byteOffset, bytes.byteLength / dtype.itemSize)
}

/** Build the array interface for a shape, typestr and optional non-C strides/offset. */
export function arrayInterface (shape: readonly number[], typestr: string, strides: readonly number[] | null, offset: number): ArrayInterface {
  const ai: ArrayInterface = {
    version: 3,
    shape: [...shape],
    typestr,
    descr: [['', typestr]],
    strides: strides === null ? null : [...strides],
    data: null,
  }
  if (offset !== 0) ai.offset = offset
  return ai
}
