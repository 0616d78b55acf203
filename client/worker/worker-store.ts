/**
 * The store as a worker thread sees it: the image table and blocks mapped from shared memory, plus a
 * MessagePort for the few things that need the server (creating, deleting, mapping a block the first time).
 * Leases, lookups, handles and events are the shared client core's (client/core/store-base.ts).
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { type FutexWake, isSharedTable, wakeOtherProcesses } from '../../protocol/cross-process.js'
import { HEADER, isExternalToken, SLOT, SLOT_FLAG, slotBase, TABLE_FLAG } from '../../protocol/layout.js'
import { descriptorFromSlot, type SlotRef } from '../../protocol/slot-reader.js'
import { notifyCommit } from '../../protocol/sync.js'
import type { Welcome, WorkerNotice, WorkerRequest } from '../../protocol/worker-messages.js'
import { loadShmAddon } from '../../shm/addon.js'
import type { Rpc } from '../core/rpc.js'
import { StoreBase, type StoreEvents } from '../core/store-base.js'

export type { CreateOptions, ViewRect } from '../core/store-base.js'
export type WorkerStoreEvents = StoreEvents

export class WorkerStore extends StoreBase {
  private readonly wakeCommit: (slot: number) => void

  /** @internal Use connect(). */
  constructor (private readonly connection: Rpc<WorkerRequest, WorkerNotice>, welcome: Welcome) {
    const words = new Int32Array(welcome.table)
    super(connection, { words, claims: new Int32Array(welcome.claims), token: welcome.token, lockTimeoutMs: welcome.lockTimeoutMs })
    this.wakeCommit = commitNotifier(words)
  }

  /** @internal Wake every waiter on a commit of `slot` (see ImageHost). */
  notifyCommit (slot: number): void {
    this.wakeCommit(slot)
  }

  /** @internal Only attached processes hold locks whose unlock cannot Atomics.notify this thread. */
  isForeignHolder (holder: number): boolean {
    return isExternalToken(holder)
  }

  /** @internal */
  async waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void> {
    this.assertOpen()
    const res = Atomics.waitAsync(this.words, slotBase(slot) + SLOT.GENERATION, generation | 0, timeoutMs === Infinity ? undefined : timeoutMs)
    if (res.async) await res.value
  }

  /** @internal */
  waitGenerationSync (slot: number, generation: number, timeoutMs: number): void {
    this.assertOpen()
    Atomics.wait(this.words, slotBase(slot) + SLOT.GENERATION, generation | 0, timeoutMs)
  }

  /** @internal */
  interruptWaits (slot: number): void {
    Atomics.notify(this.words, slotBase(slot) + SLOT.GENERATION)
  }

  protected readDescriptor (ref: SlotRef, id: string): ImageDescriptor | Promise<ImageDescriptor> {
    // Row tables, and a replica's owner and staleness, are known to the server only.
    if ((this.words[slotBase(ref.slot) + SLOT.FLAGS] & (SLOT_FLAG.LINES | SLOT_FLAG.REPLICA)) !== 0) return this.describe(id)
    return descriptorFromSlot(this.words, ref.slot)
  }

  protected mapBlocks (d: ImageDescriptor): Promise<void> | undefined {
    const needed = d.location.kind === 'block' ? [d.location.block] : d.location.segments.map((s) => s.block)
    const missing = [...new Set(needed)].filter((block) => !this.blocks.has(block))
    // The common case, a block this thread already mapped, needs no message.
    return missing.length === 0 ? undefined : this.requestBlocks(missing)
  }

  private async requestBlocks (missing: number[]): Promise<void> {
    for (const block of missing) {
      // A block is posted once and cached: indices are never reused by the server.
      if (!this.blocks.has(block)) this.blocks.set(block, await this.connection.request<SharedArrayBuffer>({ op: 'block', block }))
    }
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
