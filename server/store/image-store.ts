/**
 * The image store: images in shared-memory blocks, their control words in the image table, and the
 * operations every transport builds on (create, view, read a consistent copy, write, delete, stats).
 *
 * It knows nothing of HTTP, WebSocket, workers or the cluster. Every operation either completes or leaves
 * the store exactly as it was: validation and allocation happen before anything becomes visible.
 *
 * This file is the façade; the parts are beside it: the catalog and descriptors (records.ts), reads and
 * writes through the control words (slot-access.ts), commits made elsewhere (commit-watcher.ts), room and
 * eviction (evictor.ts, eviction.ts), uploads in progress (pending-image.ts), adoption (adopt.ts).
 */
import { EventEmitter } from 'node:events'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { assertValidId } from '../../protocol/ids.js'
import { tableBytes } from '../../protocol/layout.js'
import { specFromRequest, type CreateRequest, type SpecLimits } from '../../protocol/spec.js'
import { generationOf } from '../../protocol/sync.js'
import { Arena } from '../memory/arena.js'
import { HeapBlockProvider } from '../memory/block-provider.js'
import { ShmBlockProvider } from '../memory/shm-provider.js'
import { defaultCapacity, STORE_DEFAULTS } from '../options-table.js'
import { adoptStore, type AdoptReport } from './adopt.js'
import { CommitWatcher } from './commit-watcher.js'
import type { EvictionPolicy } from './eviction.js'
import { Evictor, type MayEvict } from './evictor.js'
import { ImageTable } from './image-table.js'
import { PendingImage } from './pending-image.js'
import { imageInit, place, shapeOf, viewInit, viewOf } from './placement.js'
import { scatter, type Pieces } from './pixels.js'
import { freesOf, Records, rootOf, type ImageOrigin, type ImageRecord, type RestoredRecord } from './records.js'
import { SlotAccess } from './slot-access.js'
import type { ImageCopy, StoreEvents, StoreOptions, StoreStats, ViewRequest } from './store-types.js'

export { PendingImage }
export type { ImageCopy, ImageOrigin, MayEvict, StoreEvents, StoreOptions, StoreStats, ViewRequest }

const CHANGE_TYPES: readonly ChangeType[] = ['created', 'updated', 'deleted']
const GiB = 1024 ** 3

export class ImageStore extends EventEmitter<StoreEvents> {
  readonly arena: Arena
  readonly table: ImageTable
  readonly limits: SpecLimits
  readonly lockTimeoutMs: number
  /** What was taken over from a dead store at start (`recover`), else null. */
  readonly adoption: AdoptReport | null
  private readonly records: Records
  private readonly slots: SlotAccess
  private readonly commits: CommitWatcher
  private readonly evictor: Evictor
  private closed = false

  constructor (options: StoreOptions = {}, totalMemory = 0) {
    super()
    const capacity = options.capacity ?? defaultCapacity(totalMemory || 8 * GiB)
    this.arena = new Arena({
      provider: options.provider ?? new HeapBlockProvider(),
      blockSize: options.blockSize ?? STORE_DEFAULTS.blockSize,
      capacity,
    })
    const provider = this.arena.provider
    const adopted = provider instanceof ShmBlockProvider ? provider.recovery?.adopted ?? null : null
    // An adopted table keeps the capacity it was made with: a mapped file cannot change size.
    const maxImages = adopted?.checked.capacity ?? options.maxImages ?? STORE_DEFAULTS.maxImages
    // A provider whose memory other processes map holds the table too, so they need nothing but names.
    this.table = new ImageTable(maxImages, { memory: provider.allocateTable?.(tableBytes(maxImages)), futexWake: provider.futexWake, adopted: adopted !== null })
    this.limits = {
      maxDimension: options.maxDimension ?? STORE_DEFAULTS.maxDimension,
      maxImageBytes: Math.min(options.maxImageBytes ?? STORE_DEFAULTS.maxImageBytes, this.arena.capacity),
    }
    this.lockTimeoutMs = options.lockTimeoutMs ?? STORE_DEFAULTS.lockTimeoutMs
    this.commits = new CommitWatcher(this.table.words, () => this.records.liveRoots(), (root) => this.announceCommit(root))
    this.records = new Records(this.table, this.arena, options.attachSocket ?? null, (slot) => this.commits.forget(slot))
    this.slots = new SlotAccess(this.table, this.lockTimeoutMs, (record) => this.reclaim(record))
    this.evictor = new Evictor(options.evict ?? STORE_DEFAULTS.evict, {
      arena: this.arena,
      table: this.table,
      promisedSlots: () => this.records.pendingIds.size,
      records: () => this.records.live(),
      isHeld: (record) => this.slots.isHeld(record),
      evict: (record, reason) => this.emit('evicted', this.retire(record, true), reason),
    })
    this.adoption = adopted === null ? null : adoptStore(this, adopted)
    this.commits.start()
  }

  /** The eviction policy (`options.evict`). */
  get evictPolicy (): EvictionPolicy { return this.evictor.policy }

  /**
   * Call `listener` for every created, updated and deleted image until the returned function is called.
   * Every consumer of the store's changes (transports, caches, metrics) subscribes through this one door.
   */
  onChange (listener: (type: ChangeType, descriptor: ImageDescriptor) => void): () => void {
    const relays = CHANGE_TYPES.map((type) => {
      const relay = (descriptor: ImageDescriptor): void => { listener(type, descriptor) }
      this.on(type, relay)
      return [type, relay] as const
    })
    return () => { for (const [type, relay] of relays) this.off(type, relay) }
  }

  // ---- catalog -------------------------------------------------------------------------------------

  has (id: string): boolean { return this.records.find(id) !== undefined }
  get size (): number { return this.records.size }
  describe (id: string): ImageDescriptor { return this.records.describe(this.record(id)) }
  list (): ImageDescriptor[] { return [...this.records.live()].map((r) => this.records.describe(r)) }
  ids (): string[] { return this.records.ids() }

  /** The id of the image whose pixels a view shows (views of views are views of the root); null for a root or an unknown id. */
  baseOf (id: string): string | null {
    return this.records.find(id)?.parent?.id ?? null
  }

  generation (id: string): number {
    return generationOf(this.table.words, rootOf(this.record(id)).slot)
  }

  // ---- create --------------------------------------------------------------------------------------

  /** Create an image, zero-filled or from `init` (C-order bytes, exactly byteLength of them). */
  create (request: CreateRequest, init?: Uint8Array, mayEvict?: MayEvict): ImageDescriptor {
    return this.createFrom(request, (pending) => {
      if (init === undefined) return
      if (init.byteLength !== pending.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', pending.byteLength, init.byteLength)
      pending.write(init)
    }, mayEvict)
  }

  /**
   * Create an image whose bytes `fill` writes into the pending image (synchronously, or by the promise it
   * returns): begin, fill, commit. When anything fails — the reservation, `fill`, the commit — everything is
   * given back and the store is exactly as it was.
   */
  createFrom (request: CreateRequest, fill: (pending: PendingImage) => Promise<void>, mayEvict?: MayEvict): Promise<ImageDescriptor>
  createFrom (request: CreateRequest, fill: (pending: PendingImage) => void, mayEvict?: MayEvict): ImageDescriptor
  createFrom (request: CreateRequest, fill: (pending: PendingImage) => void | Promise<void>, mayEvict?: MayEvict): ImageDescriptor | Promise<ImageDescriptor> {
    const pending = this.beginCreate(request, undefined, mayEvict)
    try {
      const filling = fill(pending)
      if (!(filling instanceof Promise)) return pending.commit()
      // abort() after a commit does nothing: this gives back what a failed fill or commit held.
      return filling.then(() => pending.commit()).finally(() => pending.abort())
    } catch (err) {
      pending.abort()
      throw err
    }
  }

  /**
   * Reserve an image for an upload: the id is taken and the memory allocated, but nothing is visible until
   * `commit()`. `abort()` (e.g. the client disconnected) returns everything as it was.
   * With `origin` the image's pixels come from elsewhere (a cluster replica): read-only for every client,
   * only refreshFromOrigin() writes it once committed.
   */
  beginCreate (request: CreateRequest, origin?: ImageOrigin, mayEvict?: MayEvict): PendingImage {
    this.assertOpen()
    const spec = specFromRequest(request, this.limits)
    const id = this.claimId(request.id)
    const shape = shapeOf(request, spec, this.limits)
    const placement = this.evictor.withRoom(id, [], mayEvict, (arena) => place(arena, spec, shape))!
    this.records.pendingIds.add(id)
    const pieces = this.records.piecesOf(placement, spec, shape)
    // Shared blocks are reused: zero the memory so a new image never shows an old one's pixels.
    for (const frame of pieces) for (const p of frame) p.fill(0)
    return new PendingImage(id, spec, pieces[0], () => {
      this.records.pendingIds.delete(id)
      for (const a of freesOf(placement)) this.arena.free(a)
    }, () => {
      this.records.pendingIds.delete(id)
      return this.publish(imageInit(id, spec, shape, placement, pieces, request.readonly === true, origin))
    })
  }

  /** A zero-copy view of a rectangle of a block image: same memory, parent's strides, an offset. */
  createView (parentId: string, req: ViewRequest, mayEvict?: MayEvict): ImageDescriptor {
    this.assertOpen()
    const target = this.record(parentId)
    const { root, spec, byteOffset, view } = viewOf(target, req, this.limits)
    const id = this.claimId(req.id)
    const pieces = this.records.viewPieces(root, byteOffset, spec)
    // Last, once nothing else can fail: an eviction is never spent on a view that is then refused. Its parent stays.
    this.evictor.withRoom(id, [target, root], mayEvict, null)
    return this.publish(viewInit(id, spec, req.readonly === true || target.readonly, { root, byteOffset, view }, pieces))
  }

  // ---- read and write ------------------------------------------------------------------------------

  /** A consistent copy of the image (one committed generation, never a torn frame), into `target` when given. */
  async read (id: string, target?: Uint8Array): Promise<ImageCopy> {
    const record = this.record(id)
    this.evictor.touch(record)
    const bytes = target ?? new Uint8Array(record.spec.byteLength)
    if (bytes.byteLength < record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, bytes.byteLength)
    const generation = await this.slots.read(record, bytes)
    return { descriptor: this.records.describe(record), generation, bytes }
  }

  /** Overwrite the whole image with C-order bytes and commit a new generation. */
  async write (id: string, source: Uint8Array): Promise<ImageDescriptor> {
    const record = this.record(id)
    if (record.readonly) throw pxpError('PXP_ERR_READONLY', id)
    if (source.byteLength !== record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, source.byteLength)
    return await this.commitUpdate(record, (pieces) => scatter(pieces, source), false)
  }

  /**
   * Run `mutate` on the image's pieces under the write lock and commit a new generation. The store keeps
   * a lease for the duration, so a concurrent delete cannot free the memory under the writer.
   */
  async update (id: string, mutate: (pieces: Pieces) => void, keepPixels = true): Promise<ImageDescriptor> {
    const record = this.record(id)
    if (record.readonly) throw pxpError('PXP_ERR_READONLY', record.id)
    return await this.commitUpdate(record, mutate, keepPixels)
  }

  /** Where the pixels of `id` come from, when they are not this store's own (a view reports its root's). */
  originOf (id: string): ImageOrigin | undefined {
    return rootOf(this.record(id)).origin
  }

  /**
   * Overwrite an image that has an origin with C-order bytes from there: the one write it takes. `during`
   * runs under the write lock, so the origin's own bookkeeping changes with the same generation.
   */
  async refreshFromOrigin (id: string, source: Uint8Array, during?: () => void): Promise<ImageDescriptor> {
    const record = this.record(id)
    if (record.origin === undefined) throw pxpError('PXP_ERR_VALIDATION', `${id} has no origin to refresh from`)
    if (source.byteLength !== record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, source.byteLength)
    return await this.commitUpdate(record, (pieces) => {
      scatter(pieces, source)
      during?.()
    }, false)
  }

  // ---- recency and eviction (options.evict; see evictor.ts) -----------------------------------------

  /**
   * Note a use of `id` the store cannot see itself: a remote read served from a shared snapshot, a region
   * copied straight from shared memory. Reads through read() and every commit count already. Unknown ids
   * are ignored (the image may be gone by the time a transport reports).
   */
  touch (id: string): void {
    const record = this.records.find(id)
    if (record !== undefined) this.evictor.touch(record)
  }

  /**
   * Register a check that says whether something outside the store is using an image (e.g. a snapshot
   * being streamed): such an image is never evicted. Returns the function that removes the check.
   */
  addEvictionGuard (inUse: (id: string) => boolean): () => void {
    return this.evictor.addGuard(inUse)
  }

  // ---- delete and lifetimes ------------------------------------------------------------------------

  /** Delete an image (and every view of it). Memory is reused once no lease holds it. */
  delete (id: string): void {
    const record = this.record(id)
    for (const child of [...record.children]) if (!child.deleted) this.retire(child)
    this.retire(record)
  }

  /** Called when leases on `slot` may have dropped to 0 (a worker released, or exited). */
  reclaimSlot (slot: number): void {
    const record = this.records.atSlot(slot)
    if (record !== undefined) this.reclaim(record)
  }

  /** Deleted records still waiting for leases, for stats and recovery scans. */
  retiredSlots (): number[] {
    return this.records.retiredSlots()
  }

  // ---- memory access for transports that map memory (the worker bridge) -----------------------------

  /** The SharedArrayBuffer of block `index`, or undefined if it was released. */
  blockBuffer (index: number): SharedArrayBuffer | undefined {
    return this.arena.block(index)?.memory.buffer
  }

  /** Slot index of a live image (its record in the image table). */
  slotOf (id: string): number {
    return this.record(id).slot
  }

  /** The id and descriptor of the live image in `slot`, if any. */
  describeSlot (slot: number): ImageDescriptor | undefined {
    const record = this.records.atSlot(slot)
    return record === undefined || record.deleted ? undefined : this.records.describe(record)
  }

  stats (): StoreStats {
    let views = 0
    for (const r of this.records.live()) if (r.parent !== null) views++
    return { ...this.arena.stats(), images: this.records.size - views, views, maxImages: this.table.maxSlots, retired: this.records.slotted - this.records.size }
  }

  /**
   * Release all memory. Idempotent; later operations fail with PXP_ERR_CLOSED. `keep`: shared-memory
   * segments stay, with the table as it is, for the next server to adopt (`recover`).
   */
  close (keep = false): void {
    if (this.closed) return
    this.closed = true
    this.commits.stop()
    this.records.clear()
    this.arena.close(keep)
    this.removeAllListeners()
  }

  // ---- adoption (server/store/adopt.ts) -----------------------------------------------------------

  /** Save the rows of line-based images where the next server can find them (shared memory only). */
  saveMeta (): void {
    this.records.saveMeta()
  }

  /** Register an image found in an adopted table: its record is already live there and its memory taken. */
  restoreRecord (r: RestoredRecord): void {
    const record = this.records.restore(r, this.evictor.tick())
    if (record.parent === null) this.commits.seen(record.slot)
  }

  // ---- internals -----------------------------------------------------------------------------------

  private publish (init: Parameters<Records['publish']>[0]): ImageDescriptor {
    this.assertOpen()
    const descriptor = this.records.describe(this.records.publish(init, this.evictor.tick()))
    this.emit('created', descriptor)
    return descriptor
  }

  /**
   * The id a new image or view gets: `wanted`, checked and free, or a fresh one. Without eviction a full
   * table refuses here already (uploads in progress were promised their slots: nothing may take them).
   */
  private claimId (wanted: string | undefined): string {
    const id = wanted ?? this.records.newId()
    assertValidId(id)
    this.records.assertIdFree(id)
    if (this.evictor.policy === 'none') this.evictor.assertSlotFree()
    return id
  }

  private record (id: string): ImageRecord {
    this.assertOpen()
    return this.records.get(id)
  }

  /** Commit `mutate` under the write lock (or by loan), whoever asked; callers check permissions. */
  private async commitUpdate (record: ImageRecord, mutate: (pieces: Pieces) => void, keepPixels: boolean): Promise<ImageDescriptor> {
    await this.slots.update(record, mutate, keepPixels)
    this.announceCommit(record)
    return this.records.describe(record)
  }

  private announceCommit (record: ImageRecord): void {
    if (!this.commits.claim(record)) return
    const root = rootOf(record)
    // Every commit is seen here, whoever made it (a worker's through the commit watcher): a use.
    this.evictor.touch(root)
    this.emit('updated', this.records.describe(root))
    for (const child of root.children) if (!child.deleted) this.emit('updated', this.records.describe(child))
  }

  private retire (record: ImageRecord, evicted = false): ImageDescriptor {
    // A commit the watcher has not announced yet is announced now, so 'deleted' is never the first news of it.
    if (record.parent === null) this.announceCommit(record)
    const descriptor = this.records.describe(record)
    if (evicted) descriptor.evicted = true
    this.records.remove(record)
    this.emit('deleted', descriptor)
    this.reclaim(record)
    return descriptor
  }

  private reclaim (record: ImageRecord): void {
    if (!this.closed) this.records.reclaim(record)
  }

  private assertOpen (): void {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'store')
  }
}
