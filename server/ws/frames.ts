/**
 * What a stream sends: the bytes of one consistent generation (the whole image from a shared snapshot,
 * or a region copied on its own) and how to give them back.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { Region } from '../../protocol/messages.js'
import type { ServerContext } from '../context.js'
import type { Snapshot } from '../store/snapshots.js'
import { checkRegion, coversImage, cropBytes, readRegionDirect, regionShape } from './region.js'

export interface FrameSource {
  /** The image, with `generation` set to the generation of `bytes`. */
  readonly descriptor: ImageDescriptor
  readonly generation: number
  readonly region: Region | null
  readonly shape: number[]
  readonly bytes: Uint8Array
  /** Give the bytes back (the snapshot's reference). Idempotent. */
  release (): void
}

const noop = (): void => {}

/** A frame from a snapshot the caller already holds; releasing the frame releases the snapshot. */
export function snapshotFrame (snapshot: Snapshot): FrameSource {
  return {
    descriptor: snapshot.descriptor,
    generation: snapshot.generation,
    region: null,
    shape: [...snapshot.descriptor.shape],
    bytes: snapshot.bytes,
    release: () => snapshot.release(),
  }
}

/**
 * Open the frame a `get` asks for. Whole images come from the shared snapshot cache (readers of one
 * generation share one copy); regions are copied on their own (region.ts says why).
 */
export async function openFrame (ctx: ServerContext, id: string, generation?: number, region?: Region): Promise<FrameSource> {
  if (region !== undefined) {
    const current = ctx.store.describe(id)
    checkRegion(current, region)
    if (!coversImage(current, region)) {
      if (generation === undefined || generation === current.generation) {
        const copy = readRegionDirect(ctx, id, region)
        if (copy !== null && (generation === undefined || copy.generation === generation)) {
          return { ...copy, region, release: noop }
        }
      }
      // An older generation, or writers overlapped every optimistic read: crop a snapshot.
      const snapshot = await ctx.snapshots.acquire(id, generation)
      try {
        return {
          descriptor: snapshot.descriptor,
          generation: snapshot.generation,
          region,
          shape: regionShape(snapshot.descriptor, region),
          bytes: cropBytes(snapshot.descriptor, snapshot.bytes, region),
          release: noop,
        }
      } finally {
        snapshot.release()
      }
    }
  }
  const frame = snapshotFrame(await ctx.snapshots.acquire(id, generation))
  return region === undefined ? frame : { ...frame, region }
}
