/**
 * What every client store that maps the server's memory does the same way, whether it is a worker thread
 * (WorkerStore) or another process (AttachedStore): find images in the shared table, take and drop leases
 * (recorded in this client's claims, so the server can take them back if the client dies), cache lookups and
 * descriptors, keep track of open handles, turn change listeners into holds on the connection, and shut down
 * when the connection ends.
 *
 * Subclasses say how blocks are mapped, where a descriptor comes from, and how waiters are woken.
 */
import { EventEmitter } from 'node:events'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM, claimBase, HEADER, SLOT, SLOT_FLAG, SLOT_STATE, slotBase, TABLE_FLAG } from '../../protocol/layout.js'
import { descriptorFromSlot, findSlot, isLive, type SlotRef } from '../../protocol/slot-reader.js'
import type { CreateRequest } from '../../protocol/spec.js'
import type { WorkerNotice, WorkerRequest } from '../../protocol/worker-messages.js'
import type { ImageHost } from './image-host.js'
import type { Rpc } from './rpc.js'
import { SharedImage } from './shared-image.js'

export interface StoreEvents {
  created: [ImageDescriptor]
  updated: [ImageDescriptor]
  deleted: [ImageDescriptor]
}

export interface CreateOptions {
  id?: string
  layout?: 'block' | 'lines'
  readonly?: boolean
  frames?: number
}

export interface ViewRect {
  x: number
  y: number
  width: number
  height: number
}

/** The requests this base sends, which every server connection (worker port, attach socket) answers. */
export type StoreRequest = Extract<WorkerRequest, { op: 'describe' | 'create' | 'view' | 'delete' }>
export type StoreNotice = WorkerNotice

/** What a connected store starts from: the server's welcome, with the table and claims mapped. */
export interface StoreSetup {
  words: Int32Array
  claims: Int32Array
  token: number
  lockTimeoutMs: number
  /** Close the store when its last handle is released (a store opened for one image). */
  closeWhenUnused?: boolean
}

// Backstop for handles the program forgot to release: their leases come back when they are collected.
const leaked = new FinalizationRegistry<{ store: WeakRef<StoreBase>, slot: number, handle: number }>((held) => {
  held.store.deref()?.forget(held.handle, held.slot)
})

export abstract class StoreBase extends EventEmitter<StoreEvents> implements ImageHost {
  /** @internal */ readonly words: Int32Array
  // Claims, token and lock timeout come with a registration: a store that attaches again gets new ones.
  /** @internal */ claims: Int32Array
  /** @internal */ token: number
  lockTimeoutMs: number
  /** Blocks mapped so far, by index (never reused by the server, so never stale). */
  protected readonly blocks = new Map<number, SharedArrayBuffer>()
  private readonly lookups = new Map<string, SlotRef>()
  /** Descriptors by slot, valid while the slot's epoch matches: reopening builds nothing. */
  private readonly descriptors = new Map<number, { epoch: number, descriptor: ImageDescriptor }>()
  /** Open handles (and where they are), so that shutting down can make them unusable, or attaching again re-take their leases. */
  private readonly handles = new Map<number, { image: WeakRef<SharedImage>, ref: SlotRef }>()
  private readonly handleIds = new WeakMap<SharedImage, number>()
  private nextHandle = 0
  private closed = false
  /**
   * The connection ended but the store lives on, waiting to attach again (AttachedStore after a server
   * restart): shared memory works, requests fail with PXP_ERR_CLOSED, leases are not counted (the server
   * that adopts the store gives back everything; attaching again takes the open handles' leases anew).
   */
  protected down = false
  /** Holds taken (hold/letGo), carried over to the next connection when attaching again. */
  private holds = 0
  private readonly self = new WeakRef(this)
  private readonly closeWhenUnused: boolean

  constructor (private rpc: Rpc<StoreRequest, StoreNotice>, setup: StoreSetup) {
    super()
    this.words = setup.words
    this.claims = setup.claims
    this.token = setup.token
    this.lockTimeoutMs = setup.lockTimeoutMs
    this.closeWhenUnused = setup.closeWhenUnused ?? false
    this.use(rpc)
    // Change listeners keep the thread alive, as any event source does; without them it may exit when done.
    const plain = this as EventEmitter
    plain.on('newListener', (name: string | symbol) => {
      if (!this.closed && isChange(name) && this.changeListeners() === 0) this.watch(true)
    })
    plain.on('removeListener', (name: string | symbol) => {
      if (!this.closed && isChange(name) && this.changeListeners() === 0) this.watch(false)
    })
  }

  /** True once close() was called or the connection to the server ended. */
  get isClosed (): boolean { return this.closed }

  /** Descriptors of every image and view, read from shared memory (line-based row tables omitted). */
  list (): ImageDescriptor[] {
    this.assertOpen()
    const words = this.words
    const out: ImageDescriptor[] = []
    const highWater = Atomics.load(words, HEADER.HIGH_WATER)
    for (let slot = 0; slot < highWater; slot++) {
      if (Atomics.load(words, slotBase(slot) + SLOT.STATE) !== SLOT_STATE.LIVE) continue
      const epoch = Atomics.load(words, slotBase(slot) + SLOT.EPOCH)
      const d = descriptorFromSlot(words, slot)
      if (isLive(words, { slot, epoch })) out.push(d)
    }
    return out
  }

  /**
   * Open an image: a lease and TypedArrays over the server's memory. Once its descriptor is cached and its
   * blocks mapped (any earlier image in the same block), no message is sent at all.
   */
  async open (id: string): Promise<SharedImage> {
    this.assertOpen()
    this.assertConnected()
    const ref = this.locate(id)
    return await this.openRef(ref instanceof Promise ? await ref : ref, id)
  }

  /** @internal Open the image in `ref` (attach(descriptor) knows the slot already). */
  async openRef (ref: SlotRef, id: string): Promise<SharedImage> {
    const slot = ref.slot
    this.takeLease(slot)
    try {
      if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      // The common case, a cached descriptor in blocks already mapped, needs no message and no await.
      let descriptor = this.cachedDescriptor(ref)
      if (descriptor === null) {
        const read = this.readDescriptor(ref, id)
        descriptor = this.remember(ref, read instanceof Promise ? await read : read)
        if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      }
      const mapping = this.mapBlocks(descriptor)
      if (mapping !== undefined) await mapping
      if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      this.assertOpen()
      const image = new SharedImage(this, ref, descriptor, (index) => this.blocks.get(index)!)
      const handle = this.nextHandle++
      this.handles.set(handle, { image: new WeakRef(image), ref })
      this.handleIds.set(image, handle)
      leaked.register(image, { store: this.self, slot, handle }, image)
      return image
    } catch (err) {
      this.dropLease(slot)
      throw err
    }
  }

  /** Create a zero-filled image; resolves to its descriptor (open() it to map it). */
  async create (spec: CreateRequest, options: CreateOptions = {}): Promise<ImageDescriptor> {
    return await this.rpc.request<ImageDescriptor>({ op: 'create', request: { ...spec, ...options } })
  }

  /** A zero-copy view of a rectangle of `id`. */
  async view (id: string, rect: ViewRect, options: { id?: string, readonly?: boolean } = {}): Promise<ImageDescriptor> {
    return await this.rpc.request<ImageDescriptor>({ op: 'view', id, view: { ...rect, ...options } })
  }

  /** The descriptor the server gives (for a replica, with its owner and staleness; for shared memory, the segment names). */
  async describe (id: string): Promise<ImageDescriptor> {
    return await this.rpc.request<ImageDescriptor>({ op: 'describe', id })
  }

  async delete (id: string): Promise<void> {
    await this.rpc.request<null>({ op: 'delete', id })
  }

  /** Disconnect. Handles still open stop working; the server gives back every lease, pin, loan and lock held. */
  close (): void {
    this.rpc.close()
    this.shutDown()
  }

  // ---- ImageHost: what SharedImage uses ------------------------------------------------------------

  /** @internal */
  hold (): void {
    this.holds++
    this.rpc.hold()
  }

  /** @internal */
  letGo (): void {
    this.holds--
    this.rpc.letGo()
  }

  /** Something holds the store (a listener, a wait): while down, the attempts to attach again keep the process alive. */
  protected get held (): boolean { return this.holds > 0 }

  /** @internal */
  releaseHandle (image: SharedImage, slot: number): void {
    leaked.unregister(image)
    this.forget(this.handleIds.get(image) ?? -1, slot)
  }

  /** @internal A handle went away (released, or collected unreleased). */
  forget (handle: number, slot: number): void {
    this.handles.delete(handle)
    this.dropLease(slot)
    if (this.handles.size === 0 && this.closeWhenUnused) this.close()
  }

  abstract isForeignHolder (holder: number): boolean
  abstract notifyCommit (slot: number): void
  abstract waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void>
  abstract waitGenerationSync (slot: number, generation: number, timeoutMs: number): void
  abstract interruptWaits (slot: number): void

  // ---- what subclasses provide ---------------------------------------------------------------------

  /**
   * Where `id` is in the table; PXP_ERR_NOT_FOUND when it is not there. Not in the table: a server in a
   * cluster (TABLE_FLAG.ASK_MISSING) may still make it local (a replica) when asked, for worker threads and
   * attached processes alike.
   */
  protected locate (id: string): SlotRef | Promise<SlotRef> {
    return this.find(id) ?? (this.asksMissing() ? this.findAfterAsking(id) : this.lookup(id))
  }

  private asksMissing (): boolean {
    return (Atomics.load(this.words, HEADER.FLAGS) & TABLE_FLAG.ASK_MISSING) !== 0
  }

  /** Ask the server to describe `id` (it answers PXP_ERR_NOT_FOUND or makes it local first), then look again. */
  private async findAfterAsking (id: string): Promise<SlotRef> {
    await this.describe(id)
    return this.lookup(id)
  }

  /** The descriptor of the live image in `ref`, when the cache has none: from the table or the server. */
  protected abstract readDescriptor (ref: SlotRef, id: string): ImageDescriptor | Promise<ImageDescriptor>

  /** Map every block `d` lives in that is not mapped yet (into `blocks`); a promise only when it must ask. */
  protected abstract mapBlocks (d: ImageDescriptor): Promise<void> | undefined

  /** The first change listener came (`true`) or the last one went (`false`). */
  protected watch (on: boolean): void {
    if (on) this.hold()
    else this.letGo()
  }

  /** Stop whatever the subclass runs (helper threads); the store is closed. */
  protected stopWaiting (): void {}

  /**
   * The connection ended, and not by close(). By default the store shuts down; AttachedStore instead waits
   * for a restarted server (--recover) and attaches again.
   */
  protected connectionEnded (): void {
    this.shutDown()
  }

  /**
   * Attached again after the server restarted and adopted the store: a new registration (claims, token),
   * the open handles' leases taken again (the adopting server gave back every lease of the dead one's
   * clients), the holds carried over. A handle whose image did not survive is released.
   */
  protected reattached (rpc: Rpc<StoreRequest, StoreNotice>, setup: Omit<StoreSetup, 'words' | 'closeWhenUnused'>): void {
    this.claims = setup.claims
    this.token = setup.token
    this.lockTimeoutMs = setup.lockTimeoutMs
    this.descriptors.clear()
    this.lookups.clear()
    this.use(rpc)
    for (let i = 0; i < this.holds; i++) rpc.hold()
    this.down = false
    for (const [handle, { image, ref }] of [...this.handles]) {
      const alive = image.deref()
      if (alive === undefined) { this.handles.delete(handle); continue }
      if (isLive(this.words, ref)) this.takeLease(ref.slot)
      else {
        this.handles.delete(handle)
        alive.release()
      }
    }
  }

  protected assertConnected (): void {
    if (this.down) throw pxpError('PXP_ERR_CLOSED', 'the server is down (restarting?): retry when it is back')
  }

  protected shutDownNow (): void { this.shutDown() }

  protected find (id: string): SlotRef | null {
    const cached = this.lookups.get(id)
    if (cached !== undefined && isLive(this.words, cached)) return cached
    const found = findSlot(this.words, id)
    if (found === null) this.lookups.delete(id)
    else this.lookups.set(id, found)
    return found
  }

  protected lookup (id: string): SlotRef {
    const found = this.find(id)
    if (found === null) throw pxpError('PXP_ERR_NOT_FOUND', id)
    return found
  }

  protected assertOpen (): void {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'store')
  }

  // ---- internals -----------------------------------------------------------------------------------

  private cachedDescriptor (ref: SlotRef): ImageDescriptor | null {
    const cached = this.descriptors.get(ref.slot)
    return cached?.epoch === ref.epoch ? cached.descriptor : null
  }

  private remember (ref: SlotRef, descriptor: ImageDescriptor): ImageDescriptor {
    // Row tables, and a replica's owner and staleness, may change within an epoch: never cached.
    if ((this.words[slotBase(ref.slot) + SLOT.FLAGS] & (SLOT_FLAG.LINES | SLOT_FLAG.REPLICA)) === 0) {
      this.descriptors.set(ref.slot, { epoch: ref.epoch, descriptor })
    }
    return descriptor
  }

  private use (rpc: Rpc<StoreRequest, StoreNotice>): void {
    this.rpc = rpc
    rpc.onEvent = (type, descriptor) => this.emit(type, descriptor)
    rpc.onClose = (byUs) => {
      if (byUs || this.closed) this.shutDown()
      else this.connectionEnded()
    }
  }

  private takeLease (slot: number): void {
    Atomics.add(this.words, slotBase(slot) + SLOT.LEASES, 1)
    Atomics.add(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
  }

  private dropLease (slot: number): void {
    // Closed: the server takes back whatever the claims still record; counting down too would count twice.
    // Down: the server that adopts the store gives back every lease, and attaching again re-takes only live handles'.
    if (this.closed || this.down) return
    Atomics.sub(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
    const left = Atomics.sub(this.words, slotBase(slot) + SLOT.LEASES, 1) - 1
    // The last lease of a deleted image: tell the server its memory may be reused.
    if (left === 0 && Atomics.load(this.words, slotBase(slot) + SLOT.STATE) !== SLOT_STATE.LIVE) {
      this.rpc.notify({ op: 'released', slot })
    }
  }

  /**
   * The connection is gone (closed here, or ended by the server): what this client held is the server's to
   * recover (it may reuse the memory of deleted images at once), so every open handle is released and
   * refuses further use, and pending waits end with PXP_ERR_CLOSED.
   */
  private shutDown (): void {
    if (this.closed) return
    this.closed = true
    this.down = false
    for (const { image: ref } of [...this.handles.values()]) {
      const image = ref.deref()
      if (image === undefined) continue
      image.release()
      this.interruptWaits(image.control)
    }
    this.handles.clear()
    this.stopWaiting()
    this.removeAllListeners()
  }

  private changeListeners (): number {
    return this.listenerCount('created') + this.listenerCount('updated') + this.listenerCount('deleted')
  }
}

function isChange (name: string | symbol): name is ChangeType {
  return name === 'created' || name === 'updated' || name === 'deleted'
}
