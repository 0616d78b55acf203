/**
 * Region-of-interest copies: only the requested rectangle is copied, never the whole image.
 *
 * The rectangle is read straight from shared memory under the image's seqlock (a consistent generation,
 * without the write lock: writers are never blocked). That costs width × height pixels, where going
 * through a snapshot would first copy the whole image (33 MiB for 4K RGBA to send a 64×64 tile) and hold
 * it in the snapshot budget. Only when writers keep overlapping every optimistic attempt, or when an older
 * generation is asked for, does the copy come from a snapshot (which takes the lock once, or already
 * holds that generation).
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { Region } from '../../protocol/messages.js'
import { pinFront, readOptimistic, unpin } from '../../protocol/sync.js'
import type { ServerContext } from '../context.js'

export interface RegionCopy {
  descriptor: ImageDescriptor
  generation: number
  bytes: Buffer
  /** Shape of `bytes`, C order: `[height, width, ...the image's trailing axes]`. */
  shape: number[]
}

/** Throws PXP_ERR_BAD_REGION unless `region` lies inside the image. */
export function checkRegion (descriptor: ImageDescriptor, region: Region): void {
  const { x, y, width, height } = region
  if (x + width > descriptor.width || y + height > descriptor.height) {
    throw pxpError('PXP_ERR_BAD_REGION', `{x:${x},y:${y},width:${width},height:${height}}`, descriptor.id, `${descriptor.width}x${descriptor.height}`)
  }
}

export function regionShape (descriptor: ImageDescriptor, region: Region): number[] {
  return descriptor.shape.length >= 2
    ? [region.height, region.width, ...descriptor.shape.slice(2)]
    : [region.height]
}

/** True when the region is the whole image (then a shared snapshot serves it better). */
export function coversImage (descriptor: ImageDescriptor, region: Region): boolean {
  return region.x === 0 && region.y === 0 && region.width === descriptor.width && region.height === descriptor.height
}

/** Where row `row` of the image starts: a block and a byte offset, from the descriptor's location. */
type RowLocator = (row: number) => { block: number, byteOffset: number }

/** Rows of frame buffer `frame` (loan/publish images have several; plain images only frame 0). */
function rowLocator (d: ImageDescriptor, rowBytes: number, frame: number): RowLocator {
  const location = d.location
  if (location.kind === 'block') {
    // A view's rows are its parent's rows: the row stride is the parent's, from the array interface.
    const stride = d.__array_interface__.strides?.[0] ?? rowBytes
    const start = location.byteOffset + (frame - location.frame) * location.frameStride
    return (row) => ({ block: location.block, byteOffset: start + row * stride })
  }
  return (row) => {
    let first = 0
    for (const s of location.segments) {
      if (row < first + s.rows) return { block: s.block, byteOffset: s.byteOffset + (row - first) * location.rowBytes }
      first += s.rows
    }
    throw pxpError('PXP_ERR_INTERNAL', `row ${row} outside the segments of ${d.id}`)
  }
}

/**
 * Copy `region` of the current generation straight from shared memory. Returns null when every
 * optimistic attempt overlapped a write; the caller then reads from a snapshot instead.
 */
export function readRegionDirect (ctx: ServerContext, id: string, region: Region): RegionCopy | null {
  const { store } = ctx
  const descriptor = store.describe(id)
  checkRegion(descriptor, region)
  // A read the store does not see (straight from shared memory): it counts for eviction order.
  store.touch(id)
  const rowBytes = descriptor.byteLength / descriptor.height
  const pixelBytes = rowBytes / descriptor.width
  const from = region.x * pixelBytes
  const length = region.width * pixelBytes
  const bytes = Buffer.allocUnsafeSlow(length * region.height)
  const views = new Map<number, Uint8Array>()
  const blockView = (block: number): Uint8Array => {
    let v = views.get(block)
    if (v === undefined) {
      const sab = store.blockBuffer(block)
      if (sab === undefined) throw pxpError('PXP_ERR_NOT_FOUND', id)
      v = new Uint8Array(sab)
      views.set(block, v)
    }
    return v
  }
  const copy = (locate: RowLocator): void => {
    for (let r = 0; r < region.height; r++) {
      const { block, byteOffset } = locate(region.y + r)
      const start = byteOffset + from
      bytes.set(blockView(block).subarray(start, start + length), r * length)
    }
  }
  // The copy is synchronous: nothing on this thread can delete the image (and free its memory) while it
  // runs, and other threads only write, under the protocol checked here (protocol/layout.ts).
  const words = store.table.words
  const slot = store.slotOf(descriptor.base)
  let generation: number
  if (descriptor.location.kind === 'block' && descriptor.location.frames > 1) {
    // Loan/publish images: writers fill other buffers without the seqlock; pin the published one.
    const pinned = pinFront(words, slot)
    if (pinned === null) return null
    try {
      copy(rowLocator(descriptor, rowBytes, pinned.frame))
    } finally {
      unpin(words, slot, pinned.frame)
    }
    generation = pinned.generation
  } else {
    generation = readOptimistic(words, slot, () => copy(rowLocator(descriptor, rowBytes, 0)))
    if (generation < 0) return null
  }
  return { descriptor: { ...descriptor, generation }, generation, bytes, shape: regionShape(descriptor, region) }
}

/** Copy `region` out of a full C-order copy of the image (a snapshot). */
export function cropBytes (descriptor: ImageDescriptor, source: Uint8Array, region: Region): Buffer {
  checkRegion(descriptor, region)
  const rowBytes = descriptor.byteLength / descriptor.height
  const pixelBytes = rowBytes / descriptor.width
  const length = region.width * pixelBytes
  const out = Buffer.allocUnsafeSlow(length * region.height)
  for (let r = 0; r < region.height; r++) {
    const start = (region.y + r) * rowBytes + region.x * pixelBytes
    out.set(source.subarray(start, start + length), r * length)
  }
  return out
}
