/**
 * What a SharedImage needs from the store that opened it, the option and result types of its public methods,
 * and the write-lock step every write path takes.
 *
 * A worker thread's store (WorkerStore) and a store attached from another process (AttachedStore) are the
 * hosts; everything else is the same shared memory and the same steps. The difference is only who can be
 * woken how: Atomics.notify reaches this process, a futex reaches others.
 */
import type { TypedArray } from '../../protocol/dtypes.js'
import { pxpError } from '../../protocol/errors.js'
import { lockAsync, tryLock } from '../../protocol/sync.js'
import type { SharedImage } from './shared-image.js'

export interface ImageHost {
  /** The image table. */
  readonly words: Int32Array
  /** This client's claims (layout.ts CLAIM_*), read by the server to recover them if the client dies. */
  readonly claims: Int32Array
  /** This client's write-lock token. */
  readonly token: number
  readonly lockTimeoutMs: number
  /** Is a lock `holder` one whose unlock cannot wake this thread (so lock waits must look again)? */
  isForeignHolder (holder: number): boolean
  /** Keep the thread alive while something waits; pair with letGo(). */
  hold (): void
  letGo (): void
  /** The handle was released: drop its lease. */
  releaseHandle (image: SharedImage, slot: number): void
  /** A commit of control slot `slot` was made and its lock released: wake every waiter there is. */
  notifyCommit (slot: number): void
  /** Resolve when GENERATION of `slot` may have moved from `generation` (spurious wake-ups allowed) or after `timeoutMs`. */
  waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void>
  /** Like waitGeneration, blocking the calling thread. */
  waitGenerationSync (slot: number, generation: number, timeoutMs: number): void
  /** Make this client's pending waits on `slot` return at once (they then look at why). */
  interruptWaits (slot: number): void
}

export interface WaitOptions {
  /** Give up after this many milliseconds (PXP_ERR_TIMEOUT). Default: wait forever. */
  timeout?: number
  /** Abort the wait (PXP_ERR_ABORTED). */
  signal?: AbortSignal
}

export interface WriteOptions {
  /** How long to wait for the write lock (or a free frame buffer). Default: the server's lockTimeoutMs. */
  timeout?: number
}

/** A frame buffer on loan to a writer: fill `data`, then `publish()` it as the next generation. */
export interface Loan {
  readonly data: TypedArray
  /** Index of the loaned frame buffer, or -1 for a private staging buffer (plain images). */
  readonly frame: number
  /** Publish the loaned pixels as a new generation; resolves to it. */
  publish (): Promise<number>
  /** Give the buffer back unpublished. */
  cancel (): void
}

/** A consistent frame held by a reader until `release()`. */
export interface Frame {
  readonly data: TypedArray
  readonly generation: number
  /** True when `data` is a private copy (plain images), false when it is the pinned shared buffer. */
  readonly copied: boolean
  release (): void
}

/**
 * Take the write lock of control slot `control` for `host`, waiting up to `timeout` ms
 * (PXP_ERR_LOCK_TIMEOUT naming image `id`). Uncontended, it is taken on the spot with no promise machinery.
 */
export async function lockImage (host: ImageHost, control: number, timeout: number, id: string): Promise<void> {
  if (tryLock(host.words, control, host.token)) return
  host.hold()
  try {
    if (!await lockAsync(host.words, control, host.token, timeout, (holder) => host.isForeignHolder(holder))) {
      throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, id)
    }
  } finally {
    host.letGo()
  }
}
