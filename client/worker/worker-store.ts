/**
 * The store as a worker thread sees it: the image table and blocks mapped from shared memory, plus a
 * MessagePort for the few things that need the server (creating, deleting, mapping a block the first time).
 */
import { EventEmitter } from 'node:events'
import type { MessagePort } from 'node:worker_threads'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { type FutexWake, isSharedTable, wakeOtherProcesses } from '../../protocol/cross-process.js'
import { CLAIM, claimBase, HEADER, isExternalToken, SLOT, SLOT_FLAG, SLOT_STATE, slotBase, TABLE_FLAG } from '../../protocol/layout.js'
import { descriptorFromSlot, findSlot, isLive, type SlotRef } from '../../protocol/slot-reader.js'
import type { CreateRequest } from '../../protocol/spec.js'
import { notifyCommit } from '../../protocol/sync.js'
import type { Welcome } from '../../protocol/worker-messages.js'
import { loadShmAddon } from '../../shm/addon.js'
import { Rpc } from './rpc.js'
import { type ImageHost, SharedImage } from './shared-image.js'

export interface WorkerStoreEvents {
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

// Backstop for handles the program forgot to release: their leases come back when they are collected.
const leaked = new FinalizationRegistry<{ store: WeakRef<WorkerStore>, slot: number }>((held) => {
  held.store.deref()?.dropLease(held.slot)
})

export class WorkerStore extends EventEmitter<WorkerStoreEvents> implements ImageHost {
  /** @internal */ readonly words: Int32Array
  /** @internal */ readonly claims: Int32Array
  /** @internal */ readonly token: number
  readonly lockTimeoutMs: number
  private readonly rpc: Rpc
  private readonly blocks = new Map<number, SharedArrayBuffer>()
  private readonly lookups = new Map<string, SlotRef>()
  /** Descriptors of block images by slot, valid while the slot's epoch matches: reopening builds nothing. */
  private readonly descriptors = new Map<number, { epoch: number, descriptor: ImageDescriptor }>()
  private readonly self = new WeakRef(this)
  /** @internal Wake every waiter on a commit of `slot` (see ImageHost). */
  readonly notifyCommit: (slot: number) => void

  /** @internal Use connect(). */
  constructor (port: MessagePort, welcome: Welcome, rpc: Rpc) {
    super()
    this.rpc = rpc
    this.words = new Int32Array(welcome.table)
    this.claims = new Int32Array(welcome.claims)
    this.token = welcome.token
    this.lockTimeoutMs = welcome.lockTimeoutMs
    this.notifyCommit = commitNotifier(this.words)
    // Change listeners keep the thread alive, as any event source does; without them it may exit when done.
    const plain = this as EventEmitter
    plain.on('newListener', (name: string | symbol) => { if (isChange(name) && this.changeListeners() === 0) this.rpc.hold() })
    plain.on('removeListener', (name: string | symbol) => { if (isChange(name) && this.changeListeners() === 0) this.rpc.letGo() })
  }

  /** @internal */
  emitChange (type: ChangeType, descriptor: ImageDescriptor): void {
    this.emit(type, descriptor)
  }

  /** Descriptors of every image and view (read from shared memory; line-based row tables are omitted). */
  list (): ImageDescriptor[] {
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
   * Open an image: a lease and TypedArrays over the server's memory. When its block is already mapped
   * (any earlier image in the same block), no message is sent at all.
   */
  async open (id: string): Promise<SharedImage> {
    // Not in the table: a server in a cluster may still make it local (a replica) when asked.
    const ref = this.find(id) ?? (this.asksMissing() ? await this.findAfterAsking(id) : this.lookup(id))
    const slot = ref.slot
    this.takeLease(slot)
    try {
      if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      const flags = this.words[slotBase(slot) + SLOT.FLAGS]
      let descriptor: ImageDescriptor
      if ((flags & (SLOT_FLAG.LINES | SLOT_FLAG.REPLICA)) !== 0) {
        // Row tables, and a replica's owner and staleness, are known to the server only.
        descriptor = await this.rpc.request<ImageDescriptor>({ op: 'describe', id })
      } else {
        const cached = this.descriptors.get(slot)
        if (cached?.epoch === ref.epoch) {
          descriptor = cached.descriptor
        } else {
          descriptor = descriptorFromSlot(this.words, slot)
          this.descriptors.set(slot, { epoch: ref.epoch, descriptor })
        }
      }
      const block = descriptor.location.kind === 'block' ? descriptor.location.block : -1
      // The common case, a block this thread already mapped, needs no message and no await.
      if (block < 0 || !this.blocks.has(block)) {
        await this.mapBlocks(descriptor)
        if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      }
      const image = new SharedImage(this, ref, descriptor, (index) => this.blocks.get(index)!)
      leaked.register(image, { store: this.self, slot }, image)
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

  async describe (id: string): Promise<ImageDescriptor> {
    return await this.rpc.request<ImageDescriptor>({ op: 'describe', id })
  }

  async delete (id: string): Promise<void> {
    await this.rpc.request<null>({ op: 'delete', id })
  }

  /** Disconnect. Handles still open are released by the server. */
  close (): void {
    this.rpc.close()
    this.removeAllListeners()
  }

  // ---- internals used by SharedImage -------------------------------------------------------------

  /** @internal */
  hold (): void { this.rpc.hold() }
  /** @internal */
  letGo (): void { this.rpc.letGo() }

  /** @internal Only attached processes hold locks whose unlock cannot Atomics.notify this thread. */
  isForeignHolder (holder: number): boolean {
    return isExternalToken(holder)
  }

  /** @internal */
  async waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void> {
    const res = Atomics.waitAsync(this.words, slotBase(slot) + SLOT.GENERATION, generation | 0, timeoutMs === Infinity ? undefined : timeoutMs)
    if (res.async) await res.value
  }

  /** @internal */
  waitGenerationSync (slot: number, generation: number, timeoutMs: number): void {
    Atomics.wait(this.words, slotBase(slot) + SLOT.GENERATION, generation | 0, timeoutMs)
  }

  /** @internal */
  interruptWaits (slot: number): void {
    Atomics.notify(this.words, slotBase(slot) + SLOT.GENERATION)
  }

  /** @internal */
  releaseHandle (image: SharedImage, slot: number): void {
    leaked.unregister(image)
    this.dropLease(slot)
  }

  /** @internal */
  dropLease (slot: number): void {
    Atomics.sub(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
    const left = Atomics.sub(this.words, slotBase(slot) + SLOT.LEASES, 1) - 1
    // The last lease of a deleted image: tell the server its memory may be reused.
    if (left === 0 && Atomics.load(this.words, slotBase(slot) + SLOT.STATE) !== SLOT_STATE.LIVE) {
      this.rpc.notify({ op: 'released', slot })
    }
  }

  private takeLease (slot: number): void {
    Atomics.add(this.words, slotBase(slot) + SLOT.LEASES, 1)
    Atomics.add(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
  }

  private lookup (id: string): SlotRef {
    const found = this.find(id)
    if (found === null) throw pxpError('PXP_ERR_NOT_FOUND', id)
    return found
  }

  private find (id: string): SlotRef | null {
    const cached = this.lookups.get(id)
    if (cached !== undefined && isLive(this.words, cached)) return cached
    const found = findSlot(this.words, id)
    if (found === null) this.lookups.delete(id)
    else this.lookups.set(id, found)
    return found
  }

  private asksMissing (): boolean {
    return (Atomics.load(this.words, HEADER.FLAGS) & TABLE_FLAG.ASK_MISSING) !== 0
  }

  /** Ask the server to describe `id` (it answers PXP_ERR_NOT_FOUND or makes it local first), then look again. */
  private async findAfterAsking (id: string): Promise<SlotRef> {
    await this.rpc.request<ImageDescriptor>({ op: 'describe', id })
    return this.lookup(id)
  }

  private async mapBlocks (d: ImageDescriptor): Promise<void> {
    const needed = d.location.kind === 'block' ? [d.location.block] : d.location.segments.map((s) => s.block)
    for (const block of new Set(needed)) {
      if (this.blocks.has(block)) continue
      // A block is posted once and cached: indices are never reused by the server.
      this.blocks.set(block, await this.rpc.request<SharedArrayBuffer>({ op: 'block', block }))
    }
  }

  private changeListeners (): number {
    return this.listenerCount('created') + this.listenerCount('updated') + this.listenerCount('deleted')
  }
}

/**
 * How this thread announces a commit. In process memory: Atomics.notify, as always. With the table in shared
 * memory, futex waiters in other processes are woken too (only when one is registered on the slot): commits
 * by other processes reach this process through the server's relay thread, ours reach them this way.
 */
function commitNotifier (words: Int32Array): (slot: number) => void {
  if (!isSharedTable(words)) return (slot) => notifyCommit(words, slot)
  const addon = loadShmAddon().addon
  // The server's thread loaded it; a worker thread of the same process loads the same file.
  if (addon === null) return (slot) => notifyCommit(words, slot)
  const futexWake: FutexWake = (buffer, byteOffset, count) => addon.futexWake(buffer, byteOffset, count)
  return (slot) => {
    wakeOtherProcesses(words, slot, futexWake)
    notifyCommit(words, slot)
  }
}

function isChange (name: string | symbol): boolean {
  return name === 'created' || name === 'updated' || name === 'deleted'
}
