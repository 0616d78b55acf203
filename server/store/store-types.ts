/**
 * The types of the store's public API: its options, what it returns and the events it emits.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { ArenaStats } from '../memory/arena.js'
import type { BlockProvider } from '../memory/block-provider.js'
import type { EvictionPolicy, EvictionReason } from './eviction.js'

export interface StoreOptions {
  /** Size of shared blocks. Default 64 MiB. */
  blockSize?: number
  /** Total bytes of image memory. Default: a quarter of physical memory, at most 16 GiB. */
  capacity?: number
  /** Most images (and views) the store holds at once. Default 16384. */
  maxImages?: number
  /** Largest single dimension. Default 65536. */
  maxDimension?: number
  /** Largest single image in bytes. Default 1 GiB (and never more than capacity). */
  maxImageBytes?: number
  /** How long a server-side write or locked read waits for a write lock held elsewhere. Default 5000 ms. */
  lockTimeoutMs?: number
  /** Where block memory comes from. Default: in-process SharedArrayBuffers. */
  provider?: BlockProvider
  /** The attach socket other processes register on (shared memory only), named in descriptors. */
  attachSocket?: string
  /**
   * What a full store does: `none` (default) refuses with 507; `lru` evicts least-recently-used images that
   * nobody holds (no lease, pin, loan or write lock, no views, no snapshot in use) until the new one fits.
   */
  evict?: EvictionPolicy
}

export interface ViewRequest {
  x: number
  y: number
  width: number
  height: number
  id?: string
  readonly?: boolean
}

export interface StoreStats extends ArenaStats {
  images: number
  views: number
  maxImages: number
  /** Deleted images whose memory is still held by open leases. */
  retired: number
}

/** A consistent copy of one generation. */
export interface ImageCopy {
  descriptor: ImageDescriptor
  generation: number
  bytes: Uint8Array
}

export interface StoreEvents {
  created: [ImageDescriptor]
  updated: [ImageDescriptor]
  deleted: [ImageDescriptor]
  /** An image was evicted to make room (after its `deleted` event, whose descriptor says `evicted: true`). */
  evicted: [ImageDescriptor, EvictionReason]
}
