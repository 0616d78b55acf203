/**
 * The store as another process on the same host sees it: the image table and blocks mapped from /dev/shm
 * through the native addon, a claims segment the server made for this process, and the attach socket for the
 * few things that need the server (describing, creating, deleting) and as the registration that lets the
 * server take back what this process held when it dies. Leases, lookups, handles and events are the shared
 * client core's (client/core/store-base.ts).
 *
 * The images it opens are the same SharedImage objects worker threads get; only waking differs: waiters in
 * other processes sleep in futexes, so commits made here futex-wake them and ring the server's relay.
 */
import type { AttachNotice, AttachRequest, AttachWelcome } from '../../protocol/attach-messages.js'
import { type FutexWake, isSharedTable, ringServer, wakeOtherProcesses, wordOffset } from '../../protocol/cross-process.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM_WORDS, HEADER, LAYOUT_VERSION, SLOT, SLOT_WORDS, slotBase, tableBytes } from '../../protocol/layout.js'
import type { SlotRef } from '../../protocol/slot-reader.js'
import { notifyCommit } from '../../protocol/sync.js'
import type { ShmAddon } from '../../shm/addon.js'
import type { Rpc } from '../core/rpc.js'
import { StoreBase, type StoreEvents } from '../core/store-base.js'
import { FutexWaiters } from './futex-waiters.js'
import { mapSegment } from './segments.js'

export type AttachedStoreEvents = StoreEvents

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

/** This process's claims segment, mapped. */
function mapClaims (addon: ShmAddon, welcome: AttachWelcome): Int32Array {
  try {
    return new Int32Array(addon.open(welcome.claims as string), 0, welcome.maxSlots * CLAIM_WORDS)
  } catch (err) {
    throw pxpError('PXP_ERR_SHM', `cannot map the claims segment ${String(welcome.claims)}: ${(err as Error).message}`)
  }
}

export class AttachedStore extends StoreBase {
  /** The server's process id. */
  readonly serverPid: number
  private readonly futexWake: FutexWake
  private readonly waiters: FutexWaiters

  /** @internal Use attach(). */
  constructor (
    private readonly connection: Rpc<AttachRequest, AttachNotice>,
    welcome: AttachWelcome,
    words: Int32Array,
    private readonly addon: ShmAddon,
    addonPath: string,
    /** Close the store when its last handle is released (attach(descriptor)). */
    closeWhenUnused = false,
  ) {
    super(connection, { words, claims: mapClaims(addon, welcome), token: welcome.token, lockTimeoutMs: welcome.lockTimeoutMs, closeWhenUnused })
    this.serverPid = welcome.pid
    this.futexWake = (buffer, byteOffset, count) => addon.futexWake(buffer, byteOffset, count)
    this.waiters = new FutexWaiters(addon, addonPath, words.buffer as SharedArrayBuffer)
  }

  // ---- ImageHost: what SharedImage uses ------------------------------------------------------------

  /** @internal Every holder but this process is in another process: its unlock cannot wake us. */
  isForeignHolder (holder: number): boolean {
    return holder !== this.token
  }

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

  // ---- what the core asks of a store ---------------------------------------------------------------

  /** Segment names (and the row table of a line-based image) are not in the table: the server is asked. */
  protected readDescriptor (_ref: SlotRef, id: string): Promise<ImageDescriptor> {
    return this.describe(id)
  }

  /** Map the segments an image lives in (each once: block indices are never reused by the server). */
  protected mapBlocks (d: ImageDescriptor): undefined {
    const loc = d.location
    const needed = loc.kind === 'block' ? [{ block: loc.block, segment: loc.segment }] : loc.segments
    for (const { block, segment } of needed) {
      if (this.blocks.has(block)) continue
      if (typeof segment !== 'string') throw pxpError('PXP_ERR_SHM', `block ${block} of ${d.id} is not in shared memory`)
      this.blocks.set(block, mapSegment(this.addon, segment))
    }
    return undefined
  }

  /** Change listeners ask the server for events, and keep the process alive as any event source does. */
  protected override watch (on: boolean): void {
    if (on) this.hold()
    this.connection.request({ op: 'watch', on }).catch(() => {})
    if (!on) this.letGo()
  }

  protected override stopWaiting (): void {
    this.waiters.close()
  }
}
