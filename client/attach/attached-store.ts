/**
 * The store as another process on the same host sees it: the image table and blocks mapped from /dev/shm
 * through the native addon, a claims segment the server made for this process, and the attach socket for the
 * few things that need the server (describing, creating, deleting) and as the registration that lets the
 * server take back what this process held when it dies.
 *
 * The images it opens are the same SharedImage objects worker threads get; only waking differs: waiters in
 * other processes sleep in futexes, so commits made here futex-wake them and ring the server's relay.
 */
import { EventEmitter } from 'node:events'
import type { AttachWelcome } from '../../protocol/attach-messages.js'
import { type FutexWake, isSharedTable, ringServer, wakeOtherProcesses, wordOffset } from '../../protocol/cross-process.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM, CLAIM_WORDS, claimBase, HEADER, LAYOUT_VERSION, SLOT, SLOT_FLAG, SLOT_STATE, SLOT_WORDS, slotBase, tableBytes } from '../../protocol/layout.js'
import { descriptorFromSlot, findSlot, isLive, type SlotRef } from '../../protocol/slot-reader.js'
import type { CreateRequest } from '../../protocol/spec.js'
import { notifyCommit } from '../../protocol/sync.js'
import type { ShmAddon } from '../../shm/addon.js'
import { type ImageHost, SharedImage } from '../worker/shared-image.js'
import type { CreateOptions, ViewRect, WorkerStoreEvents } from '../worker/worker-store.js'
import type { AttachChannel, ChangeType } from './channel.js'
import { FutexWaiters } from './futex-waiters.js'
import { mapSegment } from './segments.js'

export type AttachedStoreEvents = WorkerStoreEvents

// Backstop for handles the program forgot to release: their leases come back when they are collected.
const leaked = new FinalizationRegistry<{ store: WeakRef<AttachedStore>, slot: number, handle: number }>((held) => {
  held.store.deref()?.forget(held.handle, held.slot)
})

/** The image table of a store, mapped; checked against the layout this client speaks. */
export function mapTable (addon: ShmAddon, name: string): Int32Array {
  const buffer = mapSegment(addon, name)
  const header = new Int32Array(buffer, 0, HEADER.ATTACH_KEY + 2)
  if (header[HEADER.LAYOUT_VERSION] !== LAYOUT_VERSION || header[HEADER.SLOT_WORDS] !== SLOT_WORDS) {
    throw pxpError('PXP_ERR_PROTOCOL', `table ${name} has layout ${header[HEADER.LAYOUT_VERSION]}, this client speaks ${LAYOUT_VERSION}`)
  }
  const slots = header[HEADER.SLOT_CAPACITY]
  if (buffer.byteLength < tableBytes(slots)) throw pxpError('PXP_ERR_SHM', `table ${name} is shorter than its ${slots} slots`)
  const words = new Int32Array(buffer, 0, tableBytes(slots) / Int32Array.BYTES_PER_ELEMENT)
  if (!isSharedTable(words)) throw pxpError('PXP_ERR_SHM', `${name} is not a shared image table`)
  return words
}

export class AttachedStore extends EventEmitter<AttachedStoreEvents> implements ImageHost {
  /** @internal */ readonly words: Int32Array
  /** @internal */ readonly claims: Int32Array
  /** @internal */ readonly token: number
  readonly lockTimeoutMs: number
  /** The server's process id. */
  readonly serverPid: number
  private readonly blocks = new Map<number, SharedArrayBuffer>()
  private readonly lookups = new Map<string, SlotRef>()
  private readonly descriptors = new Map<number, { epoch: number, descriptor: ImageDescriptor }>()
  private readonly self = new WeakRef(this)
  private readonly futexWake: FutexWake
  private readonly waiters: FutexWaiters
  /** Open handles, so that close() can make them unusable: their leases are the server's again. */
  private readonly handles = new Map<number, WeakRef<SharedImage>>()
  private readonly handleIds = new WeakMap<SharedImage, number>()
  private nextHandle = 0
  private closed = false

  /** @internal Use attach(). */
  constructor (
    private readonly channel: AttachChannel,
    welcome: AttachWelcome,
    words: Int32Array,
    private readonly addon: ShmAddon,
    addonPath: string,
    /** Close the store when its last handle is released (attach(descriptor)). */
    private readonly closeWhenUnused = false,
  ) {
    super()
    this.words = words
    this.token = welcome.token
    this.lockTimeoutMs = welcome.lockTimeoutMs
    this.serverPid = welcome.pid
    let claims: SharedArrayBuffer
    try {
      claims = addon.open(welcome.claims as string)
    } catch (err) {
      throw pxpError('PXP_ERR_SHM', `cannot map the claims segment ${String(welcome.claims)}: ${(err as Error).message}`)
    }
    this.claims = new Int32Array(claims, 0, welcome.maxSlots * CLAIM_WORDS)
    this.futexWake = (buffer, byteOffset, count) => addon.futexWake(buffer, byteOffset, count)
    this.waiters = new FutexWaiters(addon, addonPath, words.buffer as SharedArrayBuffer)
    channel.onEvent = (type, descriptor) => this.emit(type, descriptor)
    channel.onClose = () => this.shutDown()
    const plain = this as EventEmitter
    // Change listeners ask the server for events, and keep the process alive as any event source does.
    plain.on('newListener', (name: string | symbol) => {
      if (this.closed || !isChange(name) || this.changeListeners() !== 0) return
      this.channel.hold()
      this.channel.request({ op: 'watch', on: true }).catch(() => {})
    })
    plain.on('removeListener', (name: string | symbol) => {
      if (this.closed || !isChange(name) || this.changeListeners() !== 0) return
      this.channel.request({ op: 'watch', on: false }).catch(() => {})
      this.channel.letGo()
    })
  }

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
   * Open an image: a lease (recorded in this process's claims) and TypedArrays over the server's memory.
   * The first open of an image asks the server for its descriptor (segment names); later ones send nothing.
   */
  async open (id: string): Promise<SharedImage> {
    this.assertOpen()
    return await this.openRef(this.lookup(id), id)
  }

  /** @internal Open the image in `ref` (attach(descriptor) knows the slot already). */
  async openRef (ref: SlotRef, id: string): Promise<SharedImage> {
    const slot = ref.slot
    this.takeLease(slot)
    try {
      if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
      let descriptor = this.descriptors.get(slot)?.epoch === ref.epoch ? this.descriptors.get(slot)!.descriptor : null
      if (descriptor === null) {
        // Segment names (and the row table of a line-based image) are not in the table: ask once.
        descriptor = await this.channel.request<ImageDescriptor>({ op: 'describe', id })
        if (!isLive(this.words, ref)) throw pxpError('PXP_ERR_NOT_FOUND', id)
        if ((this.words[slotBase(slot) + SLOT.FLAGS] & SLOT_FLAG.LINES) === 0) this.descriptors.set(slot, { epoch: ref.epoch, descriptor })
      }
      this.mapBlocks(descriptor)
      const image = new SharedImage(this, ref, descriptor, (index) => this.blocks.get(index)!)
      const handle = this.nextHandle++
      this.handles.set(handle, new WeakRef(image))
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
    return await this.channel.request<ImageDescriptor>({ op: 'create', request: { ...spec, ...options } })
  }

  /** A zero-copy view of a rectangle of `id`. */
  async view (id: string, rect: ViewRect, options: { id?: string, readonly?: boolean } = {}): Promise<ImageDescriptor> {
    return await this.channel.request<ImageDescriptor>({ op: 'view', id, view: { ...rect, ...options } })
  }

  /** The descriptor the server gives (with segment names and the control-word location). */
  async describe (id: string): Promise<ImageDescriptor> {
    return await this.channel.request<ImageDescriptor>({ op: 'describe', id })
  }

  async delete (id: string): Promise<void> {
    await this.channel.request<null>({ op: 'delete', id })
  }

  /** Detach. Handles still open stop working; the server gives back every lease, pin, loan and lock held. */
  close (): void {
    this.channel.close()
    this.shutDown()
  }

  // ---- ImageHost: what SharedImage uses ------------------------------------------------------------

  /** @internal Every holder but this process is in another process: its unlock cannot wake us. */
  isForeignHolder (holder: number): boolean {
    return holder !== this.token
  }

  /** @internal */
  hold (): void { this.channel.hold() }
  /** @internal */
  letGo (): void { this.channel.letGo() }

  /** @internal Wake waiters here (Atomics), in other processes (futex) and the server's relay. */
  notifyCommit (slot: number): void {
    wakeOtherProcesses(this.words, slot, this.futexWake)
    // Bumps COMMIT_SEQ too (what the server's commit watcher compares); its Atomics.notify reaches only
    // this process, hence the ring.
    notifyCommit(this.words, slot)
    ringServer(this.words, this.futexWake)
  }

  /** @internal */
  async waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void> {
    this.assertOpen()
    const waiters = slotBase(slot) + SLOT.FUTEX_WAITERS
    // Registered before the futex compares GENERATION: a writer then either sees us or we see its commit.
    Atomics.add(this.words, waiters, 1)
    try {
      await this.waiters.wait(wordOffset(slot, SLOT.GENERATION), generation, timeoutMs)
    } finally {
      Atomics.sub(this.words, waiters, 1)
    }
  }

  /** @internal Blocks the calling thread in the kernel: the lowest latency, for a thread that only waits. */
  waitGenerationSync (slot: number, generation: number, timeoutMs: number): void {
    this.assertOpen()
    const waiters = slotBase(slot) + SLOT.FUTEX_WAITERS
    Atomics.add(this.words, waiters, 1)
    try {
      this.addon.futexWait(this.words.buffer as SharedArrayBuffer, wordOffset(slot, SLOT.GENERATION), generation | 0, timeoutMs)
    } finally {
      Atomics.sub(this.words, waiters, 1)
    }
  }

  /** @internal */
  interruptWaits (slot: number): void {
    this.waiters.interrupt(wordOffset(slot, SLOT.GENERATION))
  }

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

  /** @internal */
  dropLease (slot: number): void {
    if (this.closed) return
    Atomics.sub(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
    const left = Atomics.sub(this.words, slotBase(slot) + SLOT.LEASES, 1) - 1
    // The last lease of a deleted image: tell the server its memory may be reused.
    if (left === 0 && Atomics.load(this.words, slotBase(slot) + SLOT.STATE) !== SLOT_STATE.LIVE) {
      this.channel.notify({ op: 'released', slot })
    }
  }

  // ---- internals -----------------------------------------------------------------------------------

  private takeLease (slot: number): void {
    Atomics.add(this.words, slotBase(slot) + SLOT.LEASES, 1)
    Atomics.add(this.claims, claimBase(slot) + CLAIM.LEASES, 1)
  }

  private lookup (id: string): SlotRef {
    const cached = this.lookups.get(id)
    if (cached !== undefined && isLive(this.words, cached)) return cached
    const found = findSlot(this.words, id)
    if (found === null) {
      this.lookups.delete(id)
      throw pxpError('PXP_ERR_NOT_FOUND', id)
    }
    this.lookups.set(id, found)
    return found
  }

  /** Map the segments an image lives in (each once: block indices are never reused by the server). */
  private mapBlocks (d: ImageDescriptor): void {
    const loc = d.location
    const needed = loc.kind === 'block' ? [{ block: loc.block, segment: loc.segment }] : loc.segments
    for (const { block, segment } of needed) {
      if (this.blocks.has(block)) continue
      if (typeof segment !== 'string') throw pxpError('PXP_ERR_SHM', `block ${block} of ${d.id} is not in shared memory`)
      this.blocks.set(block, mapSegment(this.addon, segment))
    }
  }

  /**
   * The connection is gone: what this process held is the server's to recover (it may reuse the memory of
   * deleted images at once), so every open handle is released here and refuses further use.
   */
  private shutDown (): void {
    if (this.closed) return
    this.closed = true
    for (const ref of [...this.handles.values()]) ref.deref()?.release()
    this.handles.clear()
    this.waiters.close()
    this.removeAllListeners()
  }

  private assertOpen (): void {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'attached store')
  }

  private changeListeners (): number {
    return this.listenerCount('created') + this.listenerCount('updated') + this.listenerCount('deleted')
  }
}

function isChange (name: string | symbol): name is ChangeType {
  return name === 'created' || name === 'updated' || name === 'deleted'
}
