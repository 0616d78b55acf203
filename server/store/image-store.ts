/**
 * The image store: images in shared-memory blocks, their control words in the image table, and the
 * operations every transport builds on (create, view, read a consistent copy, write, delete, stats).
 *
 * It knows nothing of HTTP, WebSocket or workers. Every operation either completes or leaves the store
 * exactly as it was: validation and allocation happen before anything becomes visible.
 */
import { EventEmitter } from 'node:events'
import { arrayInterface, type ChangeType, type ImageDescriptor, type Location, type ViewInfo } from '../../protocol/descriptor.js'
import { isPixelportError, pxpError } from '../../protocol/errors.js'
import { assertValidId } from '../../protocol/ids.js'
import { HEADER, LOCK_TOKEN, MAX_FRAMES, SLOT, SLOT_FLAG, slotBase, tableBytes } from '../../protocol/layout.js'
import {
  cStrides, isCContiguous, makeSpec, specFromRequest, type CreateRequest, type ImageSpec, type SpecLimits,
} from '../../protocol/spec.js'
import {
  beginWrite, cancelLoan, endWrite, generationOf, loanFrame, lockAsync, pinFront, publishFrame, readOptimistic, tryLock, unlock, unpin,
} from '../../protocol/sync.js'
import { Arena, type Allocation, type ArenaStats, type RowRun } from '../memory/arena.js'
import { alignUp } from '../memory/run-allocator.js'
import { HeapBlockProvider, type BlockProvider } from '../memory/block-provider.js'
import { EVICTION_POLICIES, planEviction, type EvictionPolicy, type EvictionReason } from './eviction.js'
import { gather, PieceWriter, scatter, type Pieces } from './pixels.js'
import { ImageTable } from './image-table.js'
import { ShmBlockProvider } from '../memory/shm-provider.js'
import type { StoreMeta } from '../memory/shm-table-check.js'
import { adoptStore, type AdoptReport } from './adopt.js'
import { defaultCapacity, STORE_DEFAULTS } from '../options-table.js'

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

/**
 * Which images eviction may remove to make room for one caller: those it could delete itself. Undefined:
 * any idle image (the server's own callers, worker threads and attached processes, which are trusted).
 */
export type MayEvict = (id: string) => boolean

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

/** Where a replica's pixels come from: an image owned by another node of a cluster. */
export interface ReplicaOrigin {
  /** Node id of the owner. */
  node: string
  /** The owner's base URL. */
  url: string
  /** The owner's generation the first pixels are a copy of. */
  generation: number
}

/** What the store knows of a replica (`replicaOf`). Mutable: refreshes and staleness change it. */
export interface ReplicaState {
  readonly node: string
  readonly url: string
  sourceGeneration: number
  stale: boolean
}

/** A consistent copy of one generation. */
export interface ImageCopy {
  descriptor: ImageDescriptor
  generation: number
  bytes: Uint8Array
}

interface ImageRecord {
  readonly id: string
  readonly slot: number
  readonly spec: ImageSpec
  readonly readonly: boolean
  readonly layout: 'block' | 'lines'
  /** Memory this record owns (null for views). */
  readonly allocation: Allocation | null
  readonly runs: readonly RowRun[] | null
  /** First byte in its block (block layout and views). */
  readonly block: number
  readonly byteOffset: number
  readonly strides: readonly number[]
  readonly parent: ImageRecord | null
  readonly view: ViewInfo | null
  readonly children: Set<ImageRecord>
  /** Frame buffers (1 for plain images; views share their root's). */
  readonly frames: number
  readonly frameStride: number
  /** The image's bytes in C order, per frame buffer. */
  readonly pieces: readonly Pieces[]
  /** Set on a read-only replica of another node's image (roots only; views read their root's). */
  readonly replica?: ReplicaState
  deleted: boolean
  /** The store's use clock at the last read or commit it saw (eviction order). */
  lastUsed: number
}

/** Where an image's pixels went in the arena: one allocation (block layout) or runs of rows. */
interface Placement {
  allocation: Allocation | null
  runs: RowRun[] | null
}

export interface StoreEvents {
  created: [ImageDescriptor]
  updated: [ImageDescriptor]
  deleted: [ImageDescriptor]
  /** An image was evicted to make room (after its `deleted` event, whose descriptor says `evicted: true`). */
  evicted: [ImageDescriptor, EvictionReason]
}

const CHANGE_TYPES: readonly ChangeType[] = ['created', 'updated', 'deleted']
const GiB = 1024 ** 3
/** Shortest time between two scans for commits made by other threads. */
const COMMIT_COALESCE_MS = 2
/** How long the server thread may block waiting for a write lock before it waits asynchronously. */
const SYNC_LOCK_WAIT_MS = 5

export class ImageStore extends EventEmitter<StoreEvents> {
  readonly arena: Arena
  readonly table: ImageTable
  readonly limits: SpecLimits
  readonly lockTimeoutMs: number
  private readonly records = new Map<string, ImageRecord>()
  private readonly bySlot = new Map<number, ImageRecord>()
  /** Ids promised to uploads in progress: taken, but not yet visible. */
  private readonly pendingIds = new Set<string>()
  /** Generation last announced per root slot, so each commit is announced once whoever made it. */
  private readonly announced = new Map<number, number>()
  private readonly attachSocket: string | null
  readonly evictPolicy: EvictionPolicy
  /** Bumped on every use the store sees: a record's lastUsed orders evictions. */
  private useClock = 0
  /** Say whether something outside the store (snapshots being streamed) is using an image right now. */
  private readonly evictionGuards = new Set<(id: string) => boolean>()
  private closed = false
  /** What was taken over from a dead store at start (`recover`), else null. */
  readonly adoption: AdoptReport | null
  /** Rows of line-based images by slot: the table has no room for them (saved by the provider, see adopt.ts). */
  private readonly linesMeta: StoreMeta['lines'] = {}

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
    this.attachSocket = options.attachSocket ?? null
    this.limits = {
      maxDimension: options.maxDimension ?? STORE_DEFAULTS.maxDimension,
      maxImageBytes: Math.min(options.maxImageBytes ?? STORE_DEFAULTS.maxImageBytes, this.arena.capacity),
    }
    this.lockTimeoutMs = options.lockTimeoutMs ?? STORE_DEFAULTS.lockTimeoutMs
    this.evictPolicy = options.evict ?? STORE_DEFAULTS.evict
    if (!EVICTION_POLICIES.includes(this.evictPolicy)) {
      throw pxpError('PXP_ERR_VALIDATION', `option evict must be one of ${EVICTION_POLICIES.join(', ')}, got ${JSON.stringify(options.evict)}`)
    }
    this.adoption = adopted === null ? null : adoptStore(this, adopted)
    void this.watchCommits()
  }

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

  has (id: string): boolean {
    return this.records.has(id)
  }

  get size (): number {
    return this.records.size
  }

  describe (id: string): ImageDescriptor {
    return this.descriptorOf(this.record(id))
  }

  list (): ImageDescriptor[] {
    return [...this.records.values()].map((r) => this.descriptorOf(r))
  }

  ids (): string[] {
    return [...this.records.keys()]
  }

  /** The id of the image whose pixels a view shows (views of views are views of the root); null for a root or an unknown id. */
  baseOf (id: string): string | null {
    return this.records.get(id)?.parent?.id ?? null
  }

  generation (id: string): number {
    return generationOf(this.table.words, this.controlSlot(this.record(id)))
  }

  // ---- create --------------------------------------------------------------------------------------

  /** Create an image, zero-filled or from `init` (C-order bytes, exactly byteLength of them). */
  create (request: CreateRequest, init?: Uint8Array, mayEvict?: MayEvict): ImageDescriptor {
    const upload = this.beginCreate(request, undefined, mayEvict)
    if (init !== undefined) {
      if (init.byteLength !== upload.byteLength) {
        upload.abort()
        throw pxpError('PXP_ERR_BYTE_COUNT', upload.byteLength, init.byteLength)
      }
      upload.write(init)
    }
    return upload.commit()
  }

  /**
   * Reserve an image for an upload: the id is taken and the memory allocated, but nothing is visible until
   * `commit()`. `abort()` (e.g. the client disconnected) returns everything as it was.
   * With `origin` the image is a read-only replica of another node's image (read at commit, so the
   * generation can be set once known); only refreshReplica() writes it then.
   */
  beginCreate (request: CreateRequest, origin?: ReplicaOrigin, mayEvict?: MayEvict): PendingImage {
    this.assertOpen()
    const spec = specFromRequest(request, this.limits)
    const id = request.id ?? this.newId()
    assertValidId(id)
    if (this.records.has(id) || this.pendingIds.has(id)) throw pxpError('PXP_ERR_ALREADY_EXISTS', id)
    if (this.evictPolicy === 'none') this.assertSlotFree()
    const layout = request.layout ?? 'block'
    const frames = request.frames ?? 1
    if (!Number.isInteger(frames) || frames < 1 || frames > MAX_FRAMES) {
      throw pxpError('PXP_ERR_VALIDATION', `frames must be an integer from 1 to ${MAX_FRAMES}`)
    }
    if (frames > 1 && layout === 'lines') throw pxpError('PXP_ERR_VALIDATION', 'frame buffers need layout "block"')
    const frameStride = alignUp(spec.byteLength)
    if (frames > 1 && frameStride * frames > this.limits.maxImageBytes) {
      throw pxpError('PXP_ERR_TOO_LARGE', frameStride * frames, this.limits.maxImageBytes)
    }
    const { allocation, runs } = this.withRoom(id, [], mayEvict, (arena): Placement => {
      if (layout === 'lines') return { allocation: null, runs: arena.allocateRows(spec.rowBytes, spec.height, true) }
      const one = frames > 1 ? arena.allocate(frameStride * frames) : arena.tryAllocate(spec.byteLength)
      // Not one run left, but enough memory in pieces: store it line by line rather than refuse.
      return one !== null ? { allocation: one, runs: null } : { allocation: null, runs: arena.allocateRows(spec.rowBytes, spec.height, false) }
    })!
    this.pendingIds.add(id)
    const pieces: Pieces[] = allocation !== null
      ? Array.from({ length: frames }, (_, f) => [this.bytesAt(allocation!.block, allocation!.offset + f * frameStride, spec.byteLength)])
      : [runs!.map((r) => this.bytesAt(r.block, r.offset, r.rows * spec.rowBytes))]
    // Shared blocks are reused: zero the memory so a new image never shows an old one's pixels.
    for (const frame of pieces) for (const p of frame) p.fill(0)
    return new PendingImage(id, spec, pieces[0], () => {
      this.pendingIds.delete(id)
      if (allocation !== null) this.arena.free(allocation)
      for (const r of runs ?? []) this.arena.free(r)
    }, () => {
      this.pendingIds.delete(id)
      return this.publish({
        id,
        spec,
        // A replica refuses every client's writes; only refreshReplica() changes its pixels.
        readonly: request.readonly === true || origin !== undefined,
        layout: runs === null ? 'block' : 'lines',
        allocation,
        runs,
        block: allocation?.block ?? -1,
        byteOffset: allocation?.offset ?? 0,
        strides: cStrides(spec.shape, spec.dtype.itemSize),
        parent: null,
        view: null,
        frames,
        frameStride,
        pieces,
        ...(origin !== undefined ? { replica: { node: origin.node, url: origin.url, sourceGeneration: origin.generation, stale: false } } : {}),
      })
    })
  }

  /** A zero-copy view of a rectangle of a block image: same memory, parent's strides, an offset. */
  createView (parentId: string, req: ViewRequest, mayEvict?: MayEvict): ImageDescriptor {
    this.assertOpen()
    const target = this.record(parentId)
    const { x, y, width, height } = req
    const parentSpec = target.spec
    const inside = [x, y, width, height].every((n) => Number.isInteger(n)) && x >= 0 && y >= 0 && width >= 1 && height >= 1 &&
      x + width <= parentSpec.width && y + height <= parentSpec.height
    if (!inside) {
      throw pxpError('PXP_ERR_BAD_REGION', `{x:${x},y:${y},width:${width},height:${height}}`, parentId, `${parentSpec.width}x${parentSpec.height}`)
    }
    if (target.layout === 'lines') throw pxpError('PXP_ERR_VALIDATION', `views need a block image; ${parentId} is line-based`)
    if (parentSpec.shape.length < 2) throw pxpError('PXP_ERR_VALIDATION', `views need a 2-D image; ${parentId} has shape [${parentSpec.shape.join(', ')}]`)
    const id = req.id ?? this.newId()
    assertValidId(id)
    if (this.records.has(id) || this.pendingIds.has(id)) throw pxpError('PXP_ERR_ALREADY_EXISTS', id)
    // Uploads in progress were promised a slot: a view must not take it from under them.
    if (this.evictPolicy === 'none') this.assertSlotFree()
    // A view of a view is a view of the root: one level of indirection, offsets composed.
    const root = target.parent ?? target
    const rootX = x + (target.view?.x ?? 0)
    const rootY = y + (target.view?.y ?? 0)
    const shape = [height, width, ...parentSpec.shape.slice(2)]
    const spec = makeSpec(shape, parentSpec.dtype, parentSpec.mode, this.limits)
    const byteOffset = root.byteOffset + rootY * root.strides[0] + rootX * root.strides[1]
    const contiguous = height === 1 || width === root.spec.width
    const pieces = Array.from({ length: root.frames }, (_, f) => {
      const start = byteOffset + f * root.frameStride
      if (contiguous) return [this.bytesAt(root.block, start, spec.byteLength)]
      return Array.from({ length: height }, (_, row) => this.bytesAt(root.block, start + row * root.strides[0], spec.rowBytes))
    })
    // Last, once nothing else can fail: an eviction is never spent on a view that is then refused. Its parent stays.
    this.withRoom(id, [target, root], mayEvict, null)
    return this.publish({
      id,
      spec,
      readonly: req.readonly === true || target.readonly,
      layout: 'block',
      allocation: null,
      runs: null,
      block: root.block,
      byteOffset,
      strides: root.strides,
      parent: root,
      view: { parent: root.id, x: rootX, y: rootY, width, height },
      frames: root.frames,
      frameStride: root.frameStride,
      pieces,
    })
  }

  // ---- read and write ------------------------------------------------------------------------------

  /**
   * A consistent copy of the image (one committed generation, never a torn frame), into `target` when
   * given. Readers never wait for writers except when a write overlaps every optimistic attempt; then
   * the copy is made under the write lock, which blocks writers for exactly one memory copy.
   */
  async read (id: string, target?: Uint8Array): Promise<ImageCopy> {
    const record = this.record(id)
    this.touchRecord(record)
    const bytes = target ?? new Uint8Array(record.spec.byteLength)
    if (bytes.byteLength < record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, bytes.byteLength)
    const slot = this.controlSlot(record)
    const words = this.table.words
    if (record.frames > 1) {
      // Loan/publish images: pin the published buffer; no writer can touch it until we unpin.
      const pinned = pinFront(words, slot)
      if (pinned === null) throw pxpError('PXP_ERR_LOCK_TIMEOUT', 0, record.id)
      try {
        gather(record.pieces[pinned.frame], bytes)
      } finally {
        unpin(words, slot, pinned.frame)
      }
      return { descriptor: this.descriptorOf(record), generation: pinned.generation, bytes }
    }
    let generation = readOptimistic(words, slot, () => gather(record.pieces[0], bytes))
    if (generation < 0) {
      this.retain(record)
      try {
        await this.lock(record)
        try {
          gather(record.pieces[0], bytes)
          generation = generationOf(words, slot)
        } finally {
          unlock(words, slot, LOCK_TOKEN.SERVER)
        }
      } finally {
        this.releaseLease(record)
      }
    }
    return { descriptor: this.descriptorOf(record), generation, bytes }
  }

  /** Overwrite the whole image with C-order bytes and commit a new generation. */
  async write (id: string, source: Uint8Array): Promise<ImageDescriptor> {
    const record = this.record(id)
    if (record.readonly) throw pxpError('PXP_ERR_READONLY', id)
    if (source.byteLength !== record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, source.byteLength)
    return await this.update(record, (pieces) => scatter(pieces, source), false)
  }

  /**
   * Run `mutate` on the image's pieces under the write lock and commit a new generation. The store keeps
   * a lease for the duration, so a concurrent delete cannot free the memory under the writer.
   */
  async update (recordOrId: ImageRecord | string, mutate: (pieces: Pieces) => void, keepPixels = true): Promise<ImageDescriptor> {
    const record = typeof recordOrId === 'string' ? this.record(recordOrId) : recordOrId
    if (record.readonly) throw pxpError('PXP_ERR_READONLY', record.id)
    return await this.commitUpdate(record, mutate, keepPixels)
  }

  // ---- replicas (images owned by another cluster node; see server/cluster/replicas.ts) ----------------

  /** The replica state of `id`, or undefined when this node owns it (a replica's views report their root's). */
  replicaOf (id: string): ReplicaState | undefined {
    const record = this.record(id)
    return (record.parent ?? record).replica
  }

  /**
   * Overwrite a replica with the owner's generation `sourceGeneration` (C-order bytes): the one write a
   * read-only replica takes. Commits a new local generation through the same seqlock, so waiters wake.
   */
  async refreshReplica (id: string, source: Uint8Array, sourceGeneration: number): Promise<ImageDescriptor> {
    const record = this.record(id)
    const replica = record.replica
    if (replica === undefined) throw pxpError('PXP_ERR_VALIDATION', `${id} is not a replica`)
    if (source.byteLength !== record.spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', record.spec.byteLength, source.byteLength)
    return await this.commitUpdate(record, (pieces) => {
      scatter(pieces, source)
      replica.sourceGeneration = sourceGeneration
      replica.stale = false
    }, false)
  }

  /** The owner is gone or deleted the image: the replica says so from now on (its pixels stay readable). */
  markReplicaStale (id: string): void {
    const replica = this.record(id).replica
    if (replica !== undefined) replica.stale = true
  }

  /** Commit `mutate` under the write lock (or by loan), whoever asked; callers check permissions. */
  private async commitUpdate (record: ImageRecord, mutate: (pieces: Pieces) => void, keepPixels: boolean): Promise<ImageDescriptor> {
    this.retain(record)
    try {
      if (record.frames > 1) await this.updateByLoan(record, mutate, keepPixels)
      else await this.updateInPlace(record, mutate)
    } finally {
      this.releaseLease(record)
    }
    this.announceCommit(record)
    return this.descriptorOf(record)
  }

  private async updateInPlace (record: ImageRecord, mutate: (pieces: Pieces) => void): Promise<void> {
    const words = this.table.words
    const slot = this.controlSlot(record)
    await this.lock(record)
    try {
      if (record.deleted) throw pxpError('PXP_ERR_NOT_FOUND', record.id)
      beginWrite(words, slot)
      try {
        mutate(record.pieces[0])
      } finally {
        endWrite(words, slot)
      }
    } finally {
      unlock(words, slot, LOCK_TOKEN.SERVER)
    }
    this.table.notifyCommit(slot)
  }

  /** Frame-buffered images: fill a loaned buffer, then publish it; readers of the front are never disturbed. */
  private async updateByLoan (record: ImageRecord, mutate: (pieces: Pieces) => void, keepPixels: boolean): Promise<void> {
    const words = this.table.words
    const slot = this.controlSlot(record)
    const root = record.parent ?? record
    const deadline = performance.now() + this.lockTimeoutMs
    let frame = loanFrame(words, slot)
    // Every other buffer is pinned by readers or loaned to a writer: wait for the next publish or unpin.
    while (frame < 0) {
      if (performance.now() > deadline) throw pxpError('PXP_ERR_LOCK_TIMEOUT', this.lockTimeoutMs, record.id)
      await new Promise((resolve) => setTimeout(resolve, 1))
      frame = loanFrame(words, slot)
    }
    try {
      if (keepPixels || record !== root) {
        // A view or partial update changes only part of the frame: start from the published pixels.
        const pinned = pinFront(words, slot)
        if (pinned === null) throw pxpError('PXP_ERR_LOCK_TIMEOUT', 0, record.id)
        try {
          const from = root.pieces[pinned.frame][0]
          root.pieces[frame][0].set(from)
        } finally {
          unpin(words, slot, pinned.frame)
        }
      }
      mutate(record.pieces[frame])
      await this.lock(record)
    } catch (err) {
      cancelLoan(words, slot, frame)
      throw err
    }
    try {
      if (record.deleted) {
        cancelLoan(words, slot, frame)
        throw pxpError('PXP_ERR_NOT_FOUND', record.id)
      }
      publishFrame(words, slot, frame)
    } finally {
      unlock(words, slot, LOCK_TOKEN.SERVER)
    }
    this.table.notifyCommit(slot)
  }

  /**
   * Learn of commits made outside the store (worker threads write through shared memory and bump
   * COMMIT_SEQ): one waiter on one word, woken at most once per event-loop turn however many commits land.
   */
  private async watchCommits (): Promise<void> {
    const words = this.table.words
    let seen = Atomics.load(words, HEADER.COMMIT_SEQ)
    while (!this.closed) {
      const wait = Atomics.waitAsync(words, HEADER.COMMIT_SEQ, seen)
      if (wait.async) await wait.value
      if (this.closed) return
      seen = Atomics.load(words, HEADER.COMMIT_SEQ)
      for (const record of this.bySlot.values()) {
        if (record.parent !== null || record.deleted) continue
        if (generationOf(words, record.slot) !== (this.announced.get(record.slot) ?? 0)) this.announceCommit(record)
      }
      // Coalesce bursts: writers notify a word nobody waits on for a moment, which costs them nothing, and
      // the server thread is not woken per commit (events are latest-wins anyway).
      await new Promise((resolve) => setTimeout(resolve, COMMIT_COALESCE_MS))
    }
  }

  // ---- recency and eviction (options.evict; see eviction.ts) ----------------------------------------

  /**
   * Note a use of `id` the store cannot see itself: a remote read served from a shared snapshot, a region
   * copied straight from shared memory. Reads through read() and every commit count already. Unknown ids
   * are ignored (the image may be gone by the time a transport reports).
   */
  touch (id: string): void {
    const record = this.records.get(id)
    if (record !== undefined) this.touchRecord(record)
  }

  /**
   * Register a check that says whether something outside the store is using an image (e.g. a snapshot
   * being streamed): such an image is never evicted. Returns the function that removes the check.
   */
  addEvictionGuard (inUse: (id: string) => boolean): () => void {
    this.evictionGuards.add(inUse)
    return () => { this.evictionGuards.delete(inUse) }
  }

  /**
   * Run `place` (an allocation on the arena; null when only a table slot is needed) once a slot is free.
   * When that fails for want of memory or slots and the policy is `lru`, evict the fewest least-recently-used
   * idle images that make it fit — planned first, so when no plan works nothing is evicted and the same
   * error is thrown. Never evicts the records in `keep`, nor (with `mayEvict`) an image the caller could not
   * delete itself: a client limited to `a/*` must not make room by removing `b/*`.
   */
  private withRoom<T> (forId: string, keep: readonly ImageRecord[], mayEvict: MayEvict | undefined, place: ((arena: Arena) => T) | null): T | undefined {
    try {
      this.assertSlotFree()
      return place?.(this.arena)
    } catch (err) {
      if (this.evictPolicy !== 'lru' || !isPixelportError(err) || (err.code !== 'PXP_ERR_CAPACITY' && err.code !== 'PXP_ERR_TOO_MANY_IMAGES')) throw err
      const slots = Math.max(0, this.table.slotsInUse + this.pendingIds.size + 1 - this.table.maxSlots)
      const candidates = this.evictionCandidates(keep).filter((c) => mayEvict === undefined || mayEvict(c.item.id))
      const plan = planEviction(this.arena, candidates, { slots, place })
      if (plan === null) throw err
      const reason: EvictionReason = { code: err.code, for: forId }
      for (const record of plan) this.emit('evicted', this.retire(record, true), reason)
      // The plan was checked against the arena's own bookkeeping, so this fits. (Only a worker taking a lease
      // on an evicted image in the same instant could keep its memory; then this fails like a full store.)
      this.assertSlotFree()
      return place?.(this.arena)
    }
  }

  /** Live images nobody holds: no lease, pin, loan or write lock, no views, no guard says in use. */
  private evictionCandidates (keep: readonly ImageRecord[]): Array<{ item: ImageRecord, lastUsed: number, frees: Allocation[] }> {
    const candidates: Array<{ item: ImageRecord, lastUsed: number, frees: Allocation[] }> = []
    for (const record of this.records.values()) {
      if (keep.includes(record) || record.children.size > 0) continue
      if (this.isHeld(record) || [...this.evictionGuards].some((inUse) => inUse(record.id))) {
        // Held right now is a use: a worker's reads send no message, so this is when the store learns of them.
        this.touchRecord(record)
        continue
      }
      const frees = record.allocation !== null ? [record.allocation] : [...(record.runs ?? [])]
      candidates.push({ item: record, lastUsed: record.lastUsed, frees })
    }
    return candidates
  }

  /** Does any thread or process hold the image: a lease (open handle), a pinned or loaned frame, the write lock? */
  private isHeld (record: ImageRecord): boolean {
    const words = this.table.words
    const base = slotBase(record.slot)
    if (Atomics.load(words, base + SLOT.LEASES) !== 0) return true
    // Views share their root's pins and lock; a root with views is never a candidate anyway.
    if (record.parent !== null) return false
    if (Atomics.load(words, base + SLOT.WRITE_LOCK) !== 0) return true
    for (let f = 0; f < record.frames; f++) if (Atomics.load(words, base + SLOT.PINS + f) !== 0) return true
    return false
  }

  private touchRecord (record: ImageRecord): void {
    record.lastUsed = ++this.useClock
    // Reading a view reads its parent's pixels.
    if (record.parent !== null) record.parent.lastUsed = record.lastUsed
  }

  private assertSlotFree (): void {
    if (this.table.slotsInUse + this.pendingIds.size >= this.table.maxSlots) throw pxpError('PXP_ERR_TOO_MANY_IMAGES', this.table.maxSlots)
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
    const record = this.bySlot.get(slot)
    if (record !== undefined) this.tryReclaim(record)
  }

  /** Deleted records still waiting for leases, for stats and recovery scans. */
  retiredSlots (): number[] {
    return [...this.bySlot.values()].filter((r) => r.deleted).map((r) => r.slot)
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
    const record = this.bySlot.get(slot)
    return record === undefined || record.deleted ? undefined : this.descriptorOf(record)
  }

  stats (): StoreStats {
    let views = 0
    for (const r of this.records.values()) if (r.parent !== null) views++
    return {
      ...this.arena.stats(),
      images: this.records.size - views,
      views,
      maxImages: this.table.maxSlots,
      retired: this.bySlot.size - this.records.size,
    }
  }

  /**
   * Release all memory. Idempotent; later operations fail with PXP_ERR_CLOSED. `keep`: shared-memory
   * segments stay, with the table as it is, for the next server to adopt (`recover`).
   */
  close (keep = false): void {
    if (this.closed) return
    this.closed = true
    // Wake the commit watcher so it sees `closed` and ends.
    Atomics.notify(this.table.words, HEADER.COMMIT_SEQ)
    this.records.clear()
    this.bySlot.clear()
    this.arena.close(keep)
    this.removeAllListeners()
  }

  // ---- adoption (server/store/adopt.ts) -----------------------------------------------------------

  /** Save the rows of line-based images where the next server can find them (shared memory only). */
  saveMeta (): void {
    this.arena.provider.saveMeta?.({ version: 1, lines: this.linesMeta })
  }

  /** Register an image found in an adopted table: its record is already live there and its memory taken. */
  restoreRecord (r: {
    id: string, slot: number, spec: ImageSpec, readonly: boolean, layout: 'block' | 'lines', allocation: Allocation | null, runs: RowRun[] | null,
    block: number, byteOffset: number, strides: readonly number[], frames: number, frameStride: number, parentSlot: number | null, view: ViewInfo | null,
  }): void {
    const parent = r.parentSlot === null ? null : this.bySlot.get(r.parentSlot)!
    const { spec } = r
    let pieces: Pieces[]
    if (r.runs !== null) {
      pieces = [r.runs.map((run) => this.bytesAt(run.block, run.offset, run.rows * spec.rowBytes))]
      this.linesMeta[String(r.slot)] = { epoch: this.table.word(r.slot, SLOT.EPOCH), id: r.id, runs: r.runs.map((run) => [run.block, run.offset, run.rows]) }
    } else if (parent === null) {
      pieces = Array.from({ length: r.frames }, (_, f) => [this.bytesAt(r.block, r.byteOffset + f * r.frameStride, spec.byteLength)])
    } else {
      const contiguous = spec.height === 1 || spec.width === parent.spec.width
      pieces = Array.from({ length: r.frames }, (_, f) => {
        const start = r.byteOffset + f * r.frameStride
        if (contiguous) return [this.bytesAt(r.block, start, spec.byteLength)]
        return Array.from({ length: spec.height }, (_, row) => this.bytesAt(r.block, start + row * r.strides[0], spec.rowBytes))
      })
    }
    const { parentSlot: _, ...rest } = r
    const record: ImageRecord = { ...rest, parent, pieces, children: new Set(), deleted: false, lastUsed: ++this.useClock }
    this.records.set(r.id, record)
    this.bySlot.set(r.slot, record)
    parent?.children.add(record)
    if (parent === null) this.announced.set(r.slot, generationOf(this.table.words, r.slot))
  }

  // ---- internals -----------------------------------------------------------------------------------

  private publish (init: Omit<ImageRecord, 'slot' | 'children' | 'deleted' | 'lastUsed'>): ImageDescriptor {
    this.assertOpen()
    if (this.records.has(init.id)) throw pxpError('PXP_ERR_ALREADY_EXISTS', init.id)
    const slot = this.table.allocSlot()
    const record: ImageRecord = { ...init, slot, children: new Set(), deleted: false, lastUsed: ++this.useClock }
    if (record.runs !== null) {
      // Saved before the record turns live: a crash in between leaves rows for a record that is not live.
      this.linesMeta[String(slot)] = { epoch: this.table.word(slot, SLOT.EPOCH) + 1, id: record.id, runs: record.runs.map((r) => [r.block, r.offset, r.rows]) }
      try {
        this.saveMeta()
      } catch (err) {
        delete this.linesMeta[String(slot)]
        this.table.unreserve(slot)
        throw err
      }
    }
    let flags = 0
    if (record.readonly) flags |= SLOT_FLAG.READONLY
    if (record.parent !== null) flags |= SLOT_FLAG.VIEW
    if (record.layout === 'lines') flags |= SLOT_FLAG.LINES
    if ((record.parent ?? record).replica !== undefined) flags |= SLOT_FLAG.REPLICA
    this.table.publish(slot, {
      id: record.id,
      flags,
      dtype: record.spec.dtype.code,
      mode: record.spec.mode?.code ?? 0,
      shape: record.spec.shape,
      strides: record.strides,
      block: record.block,
      byteOffset: record.byteOffset,
      byteLength: record.spec.byteLength,
      parent: record.parent?.slot ?? -1,
      frames: record.frames,
      frameStride: record.frameStride,
    })
    this.records.set(record.id, record)
    this.bySlot.set(slot, record)
    record.parent?.children.add(record)
    const descriptor = this.descriptorOf(record)
    this.emit('created', descriptor)
    return descriptor
  }

  private record (id: string): ImageRecord {
    this.assertOpen()
    const record = typeof id === 'string' ? this.records.get(id) : undefined
    if (record === undefined) throw pxpError('PXP_ERR_NOT_FOUND', String(id))
    return record
  }

  /** Views share the seqlock, generation and write lock of their root image. */
  private controlSlot (record: ImageRecord): number {
    return (record.parent ?? record).slot
  }

  private async lock (record: ImageRecord): Promise<void> {
    // First a short synchronous wait: unlock() wakes a blocked waiter at once, so a reader competing with a
    // writer that re-locks in a tight loop still gets its turn; waiting through the event loop, it would not.
    // Bounded, so the server thread never stalls for more than a few frame copies.
    const words = this.table.words
    const slot = this.controlSlot(record)
    const at = slotBase(slot) + SLOT.WRITE_LOCK
    const spinUntil = performance.now() + SYNC_LOCK_WAIT_MS
    while (performance.now() < spinUntil) {
      if (tryLock(words, slot, LOCK_TOKEN.SERVER)) return
      const holder = Atomics.load(words, at)
      if (holder !== 0) Atomics.wait(words, at, holder, 0.5)
    }
    const ok = await lockAsync(this.table.words, this.controlSlot(record), LOCK_TOKEN.SERVER, this.lockTimeoutMs)
    if (!ok) throw pxpError('PXP_ERR_LOCK_TIMEOUT', this.lockTimeoutMs, record.id)
  }

  private retain (record: ImageRecord): void {
    this.table.addLeases(record.slot, 1)
  }

  private releaseLease (record: ImageRecord): void {
    if (this.table.addLeases(record.slot, -1) === 0 && record.deleted) this.tryReclaim(record)
  }

  private announceCommit (record: ImageRecord): void {
    const root = record.parent ?? record
    const generation = generationOf(this.table.words, root.slot)
    if ((this.announced.get(root.slot) ?? 0) === generation) return
    this.announced.set(root.slot, generation)
    // Every commit is seen here, whoever made it (a worker's through the commit watcher): a use.
    this.touchRecord(root)
    this.emit('updated', this.descriptorOf(root))
    for (const child of root.children) if (!child.deleted) this.emit('updated', this.descriptorOf(child))
  }

  private retire (record: ImageRecord, evicted = false): ImageDescriptor {
    // A commit the watcher has not announced yet is announced now, so 'deleted' is never the first news of it.
    if (record.parent === null) this.announceCommit(record)
    const descriptor = this.descriptorOf(record)
    if (evicted) descriptor.evicted = true
    record.deleted = true
    this.records.delete(record.id)
    this.table.retire(record.slot)
    this.emit('deleted', descriptor)
    this.tryReclaim(record)
    return descriptor
  }

  private tryReclaim (record: ImageRecord): void {
    if (!record.deleted || this.closed) return
    if (this.table.leases(record.slot) > 0 || record.children.size > 0) return
    // A writer that died holding the lock was recovered by the bridge before leases could reach 0.
    this.bySlot.delete(record.slot)
    this.announced.delete(record.slot)
    this.table.free(record.slot)
    if (record.allocation !== null) this.arena.free(record.allocation)
    for (const r of record.runs ?? []) this.arena.free(r)
    if (record.runs !== null) {
      delete this.linesMeta[String(record.slot)]
      // The entry names an epoch the slot no longer has, so a failed save here is harmless.
      try { this.saveMeta() } catch {}
    }
    const parent = record.parent
    if (parent !== null) {
      parent.children.delete(record)
      this.tryReclaim(parent)
    }
  }

  /** The shared-memory name of block `index`, or null in process memory. */
  private segmentOf (index: number): string | null {
    return this.arena.block(index)?.memory.name ?? null
  }

  private bytesAt (block: number, offset: number, length: number): Uint8Array {
    return new Uint8Array(this.arena.block(block)!.memory.buffer, offset, length)
  }

  private descriptorOf (record: ImageRecord): ImageDescriptor {
    const { spec } = record
    const root = record.parent ?? record
    const generation = generationOf(this.table.words, root.slot)
    const replica = root.replica
    const copied = record.layout === 'lines' || replica !== undefined
    let location: Location
    let strides: number[] | null = null
    let offset = 0
    // With shared memory, what a process on the same host needs: segment names and where the control words are.
    const shared = this.table.shared
    const control = shared
      ? { table: this.table.segment, slot: record.slot, controlSlot: root.slot, controlOffset: slotBase(root.slot) * Int32Array.BYTES_PER_ELEMENT, socket: this.attachSocket }
      : {}
    if (record.layout === 'lines') {
      location = {
        kind: 'lines',
        rowBytes: spec.rowBytes,
        segments: record.runs!.map((r) => ({ block: r.block, byteOffset: r.offset, rows: r.rows, ...(shared ? { segment: this.segmentOf(r.block) } : {}) })),
        ...control,
      }
    } else {
      const frame = record.frames > 1 ? this.table.word(root.slot, SLOT.FRONT) : 0
      location = {
        kind: 'block',
        block: record.block,
        byteOffset: record.byteOffset + frame * record.frameStride,
        frames: record.frames,
        frame,
        frameStride: record.frameStride,
        ...(shared ? { segment: this.segmentOf(record.block) } : {}),
        ...control,
      }
      if (record.parent !== null) {
        offset = record.byteOffset - root.byteOffset
        strides = isCContiguous(spec.shape, record.strides, spec.dtype.itemSize) ? null : [...record.strides]
      }
    }
    return {
      id: record.id,
      mode: spec.mode?.name ?? null,
      width: spec.width,
      height: spec.height,
      channels: spec.channels,
      typestr: spec.dtype.typestr,
      shape: [...spec.shape],
      byteLength: spec.byteLength,
      generation,
      readonly: record.readonly || copied,
      layout: record.layout,
      copied,
      base: root.id,
      view: record.view,
      location,
      __array_interface__: arrayInterface(spec.shape, spec.dtype.typestr, strides, offset),
      ...(replica !== undefined ? { owner: replica.node, sourceGeneration: replica.sourceGeneration, stale: replica.stale } : {}),
    }
  }

  private newId (): string {
    let id: string
    do id = 'img-' + Math.random().toString(36).slice(2, 10)
    while (this.records.has(id) || this.pendingIds.has(id))
    return id
  }

  private assertOpen (): void {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'store')
  }
}

/** An image being uploaded: memory reserved, id taken, invisible until commit. */
export class PendingImage {
  private readonly writer: PieceWriter
  private done = false

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

  /** Give everything back. Idempotent. */
  abort (): void {
    if (this.done) return
    this.done = true
    this.onAbort()
  }
}
