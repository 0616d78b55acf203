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
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { ATTACH_PROTOCOL_VERSION, type AttachNotice, type AttachRequest, type AttachWelcome } from '../../protocol/attach-messages.js'
import { type FutexWake, isSharedTable, ringServer, wakeOtherProcesses, wordOffset } from '../../protocol/cross-process.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM_WORDS, HEADER, LAYOUT_VERSION, SLOT, SLOT_WORDS, slotBase, tableBytes } from '../../protocol/layout.js'
import type { SlotRef } from '../../protocol/slot-reader.js'
import { notifyCommit } from '../../protocol/sync.js'
import { SHM_DIR, type ShmAddon } from '../../shm/addon.js'
import { Rpc } from '../core/rpc.js'
import { StoreBase, type StoreEvents } from '../core/store-base.js'
import { FutexWaiters } from './futex-waiters.js'
import { mapSegment } from './segments.js'
import { SocketTransport } from './socket-transport.js'

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

/** Where a store is: its table (mapped) and its attach socket. */
export interface StoreAddress {
  tableName: string
  socket: string
  words: Int32Array
}

/**
 * Register this process with the server at `address.socket`: the hello (with the table's key, which proves
 * this process may map it) and the welcome, which names the claims segment and the token.
 */
export async function register (address: StoreAddress): Promise<{ connection: Rpc<AttachRequest, AttachNotice>, welcome: AttachWelcome }> {
  const { words, tableName } = address
  const connection = new Rpc<AttachRequest, AttachNotice>(await SocketTransport.connect(address.socket))
  try {
    const welcome = await connection.request<AttachWelcome>({
      op: 'hello',
      protocol: ATTACH_PROTOCOL_VERSION,
      layoutVersion: LAYOUT_VERSION,
      pid: process.pid,
      key: [words[HEADER.ATTACH_KEY], words[HEADER.ATTACH_KEY + 1]],
      claims: true,
    })
    if (welcome.table !== tableName) throw pxpError('PXP_ERR_PROTOCOL', `the attach socket serves table ${welcome.table}, not ${tableName}`)
    return { connection, welcome }
  } catch (err) {
    connection.close()
    throw err
  }
}

/** First and longest pause between attempts to attach again while the server is down. */
const REATTACH_FIRST_MS = 50
const REATTACH_MAX_MS = 1000

/** This process's claims segment, mapped. */
function mapClaims (addon: ShmAddon, welcome: AttachWelcome): Int32Array {
  try {
    return new Int32Array(addon.open(welcome.claims as string), 0, welcome.maxSlots * CLAIM_WORDS)
  } catch (err) {
    throw pxpError('PXP_ERR_SHM', `cannot map the claims segment ${String(welcome.claims)}: ${(err as Error).message}`)
  }
}

export interface AttachedStoreOptions {
  /** Close the store when its last handle is released (attach(descriptor)). */
  closeWhenUnused?: boolean
  /** Attach again by itself when the server restarts and adopts the store (default true). */
  reconnect?: boolean
}

export class AttachedStore extends StoreBase {
  /** The server's process id (the current one's, after attaching again). */
  serverPid: number
  /** How many times this store attached again after its server went away and came back. */
  reconnects = 0
  private readonly futexWake: FutexWake
  private readonly waiters: FutexWaiters
  private readonly reconnect: boolean

  /** @internal Use attach(). */
  constructor (
    private connection: Rpc<AttachRequest, AttachNotice>,
    welcome: AttachWelcome,
    private readonly address: StoreAddress,
    private readonly addon: ShmAddon,
    addonPath: string,
    options: AttachedStoreOptions = {},
  ) {
    const words = address.words
    super(connection, { words, claims: mapClaims(addon, welcome), token: welcome.token, lockTimeoutMs: welcome.lockTimeoutMs, closeWhenUnused: options.closeWhenUnused })
    this.serverPid = welcome.pid
    this.reconnect = options.reconnect ?? true
    this.futexWake = (buffer, byteOffset, count) => addon.futexWake(buffer, byteOffset, count)
    this.waiters = new FutexWaiters(addon, addonPath, words.buffer as SharedArrayBuffer)
  }

  // ---- riding through a restart of the server ------------------------------------------------------

  /**
   * The server went away. Its segments stay in /dev/shm after a crash or a stop with --keep, and a server
   * started with --recover adopts them under the same store id, so on the same attach socket: until then
   * this store keeps working on shared memory (reads, writes, waits), requests fail with PXP_ERR_CLOSED,
   * and it tries to attach again. When the table is removed (stopped without --keep, or replaced by a
   * new store) the store is gone, and this one closes.
   */
  protected override connectionEnded (): void {
    if (!this.reconnect || !this.tableExists()) {
      this.shutDownNow()
      return
    }
    this.down = true
    void this.attachAgain()
  }

  private tableExists (): boolean {
    return existsSync(`${SHM_DIR}/${this.address.tableName.replace(/^\//, '')}`)
  }

  private async attachAgain (): Promise<void> {
    let pause = REATTACH_FIRST_MS
    while (this.down && !this.isClosed) {
      // Only something that waits on the store (a listener, a pending wait) keeps the process alive meanwhile.
      await sleep(pause, undefined, { ref: this.held })
      pause = Math.min(pause * 2, REATTACH_MAX_MS)
      if (!this.down || this.isClosed) return
      if (!this.tableExists()) {
        this.shutDownNow()
        return
      }
      let registered: Awaited<ReturnType<typeof register>>
      try {
        registered = await register(this.address)
      } catch {
        continue                      // not listening yet
      }
      if (this.isClosed) {
        registered.connection.close()
        return
      }
      const { connection, welcome } = registered
      this.connection = connection
      this.serverPid = welcome.pid
      this.reattached(connection, { claims: mapClaims(this.addon, welcome), token: welcome.token, lockTimeoutMs: welcome.lockTimeoutMs })
      this.reconnects++
      if (this.listenerCount('created') + this.listenerCount('updated') + this.listenerCount('deleted') > 0) {
        connection.request({ op: 'watch', on: true }).catch(() => {})
      }
      return
    }
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

  /** @internal Registered in FUTEX_WAITERS before the futex compares GENERATION: a writer then either sees us or we see its commit. */
  waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void> {
    this.assertOpen()
    return this.waiters.wait(wordOffset(slot, SLOT.GENERATION), generation, timeoutMs, slotBase(slot) + SLOT.FUTEX_WAITERS)
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
