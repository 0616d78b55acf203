/**
 * Shared snapshots for remote readers.
 *
 * A remote client cannot map shared memory, so it gets a copy of one consistent generation. Readers of
 * the same generation share one copy (reference-counted), writers are never blocked by a slow network
 * client (it holds a snapshot, not a lock), and the total memory of snapshots is bounded.
 */
import { pxpError } from '../../protocol/errors.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { ImageStore } from './image-store.js'

export interface Snapshot {
  readonly id: string
  readonly generation: number
  readonly descriptor: ImageDescriptor
  /** The bytes in C order. Must not be used after release(). */
  readonly bytes: Buffer
  /** Give the snapshot back. Idempotent. */
  release (): void
}

export interface SnapshotStats {
  snapshots: number
  bytes: number
  maxBytes: number
  /** Acquisitions served by an existing snapshot. */
  shared: number
  /** Acquisitions that made a new copy. */
  copies: number
}

interface Entry {
  readonly id: string
  readonly generation: number
  readonly descriptor: ImageDescriptor
  readonly bytes: Buffer
  refs: number
  lastUsed: number
}

/** A copy in progress and the acquires waiting for it. */
interface CopyJob {
  waiters: number
  done: Promise<Entry> | null
}

export class SnapshotCache {
  private readonly entries = new Map<string, Entry[]>()
  private readonly inflight = new Map<string, CopyJob>()
  private totalBytes = 0
  private sharedCount = 0
  private copyCount = 0
  private clock = 0

  constructor (private readonly store: ImageStore, readonly maxBytes: number) {
    store.on('deleted', (d) => this.dropUnreferenced(d.id))
    // An image whose snapshot is being copied or streamed is in use: the store never evicts it meanwhile.
    store.addEvictionGuard((id) => this.inflight.has(id) || (this.entries.get(id) ?? []).some((e) => e.refs > 0))
  }

  /**
   * A snapshot of the current generation of `id` (or of `generation`, if that one is still held).
   * Throws PXP_ERR_GENERATION_GONE for a generation no longer available and PXP_ERR_SNAPSHOT_BUDGET when
   * the snapshot memory budget is exhausted by snapshots still in use.
   */
  async acquire (id: string, generation?: number): Promise<Snapshot> {
    const current = this.store.generation(id)
    // Every remote read comes through here, also the ones a shared snapshot serves without a store read.
    this.store.touch(id)
    const list = this.entries.get(id) ?? []
    const want = generation ?? current
    const found = list.find((e) => e.generation === want)
    if (found !== undefined) {
      this.sharedCount++
      return this.lease(found)
    }
    if (generation !== undefined && generation !== current) {
      throw pxpError('PXP_ERR_GENERATION_GONE', generation, id, current)
    }
    let job = this.inflight.get(id)
    const joined = job !== undefined
    if (job === undefined) {
      const created: CopyJob = { waiters: 0, done: null }
      created.done = this.copy(id, created)
      this.inflight.set(id, created)
      // Forget the job however it ends, also when copy() failed before its first await.
      created.done.then(() => this.forget(id, created), () => this.forget(id, created))
      job = created
    }
    job.waiters++
    const entry = await job.done!
    if (joined) this.sharedCount++
    if (generation !== undefined && entry.generation !== generation) {
      // Asked for one generation, and the copy we joined caught a newer one: hand it back, say so.
      this.handle(entry).release()
      throw pxpError('PXP_ERR_GENERATION_GONE', generation, id, entry.generation)
    }
    // The entry was created holding one reference per waiter: between the copy finishing and this line
    // it could not look idle to makeRoom() and be evicted while still owed to us.
    return this.handle(entry)
  }

  stats (): SnapshotStats {
    let count = 0
    for (const list of this.entries.values()) count += list.length
    return { snapshots: count, bytes: this.totalBytes, maxBytes: this.maxBytes, shared: this.sharedCount, copies: this.copyCount }
  }

  private async copy (id: string, job: CopyJob): Promise<Entry> {
    const length = this.store.describe(id).byteLength
    this.makeRoom(length)
    // Reserve before the await so concurrent copies of other images see the budget taken.
    this.totalBytes += length
    let entry: Entry
    try {
      const copy = await this.store.read(id, Buffer.allocUnsafeSlow(length))
      entry = { id, generation: copy.generation, descriptor: { ...copy.descriptor, generation: copy.generation }, bytes: copy.bytes as Buffer, refs: job.waiters, lastUsed: 0 }
    } catch (err) {
      this.totalBytes -= length
      throw err
    }
    // From here on the waiter count is frozen in entry.refs: later acquires find the entry instead.
    this.forget(id, job)
    this.copyCount++
    const list = this.entries.get(id) ?? []
    // Anything older that nobody holds is dead weight now.
    for (const old of list.filter((e) => e.refs === 0)) this.remove(old)
    const kept = this.entries.get(id) ?? []
    kept.push(entry)
    this.entries.set(id, kept)
    return entry
  }

  private forget (id: string, job: CopyJob): void {
    if (this.inflight.get(id) === job) this.inflight.delete(id)
  }

  private lease (entry: Entry): Snapshot {
    entry.refs++
    return this.handle(entry)
  }

  /** A handle on one reference the caller already holds. */
  private handle (entry: Entry): Snapshot {
    entry.lastUsed = ++this.clock
    let released = false
    return {
      id: entry.id,
      generation: entry.generation,
      descriptor: entry.descriptor,
      bytes: entry.bytes,
      release: () => {
        if (released) return
        released = true
        entry.refs--
        if (entry.refs === 0 && !this.isLatest(entry)) this.remove(entry)
      },
    }
  }

  private isLatest (entry: Entry): boolean {
    if (!this.store.has(entry.id)) return false
    return this.store.generation(entry.id) === entry.generation
  }

  /** Evict unreferenced snapshots, least recently used first, until `length` more bytes fit. */
  private makeRoom (length: number): void {
    if (this.totalBytes + length <= this.maxBytes) return
    const idle = [...this.entries.values()].flat().filter((e) => e.refs === 0).sort((a, b) => a.lastUsed - b.lastUsed)
    for (const e of idle) {
      if (this.totalBytes + length <= this.maxBytes) break
      this.remove(e)
    }
    if (this.totalBytes + length > this.maxBytes) {
      throw pxpError('PXP_ERR_SNAPSHOT_BUDGET', `snapshot memory budget of ${this.maxBytes} bytes is in use by other readers`)
    }
  }

  private dropUnreferenced (id: string): void {
    for (const e of [...(this.entries.get(id) ?? [])]) if (e.refs === 0) this.remove(e)
  }

  private remove (entry: Entry): void {
    const list = this.entries.get(entry.id)
    if (list === undefined) return
    const i = list.indexOf(entry)
    if (i < 0) return
    list.splice(i, 1)
    if (list.length === 0) this.entries.delete(entry.id)
    this.totalBytes -= entry.bytes.byteLength
  }
}
