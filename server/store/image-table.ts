/**
 * The image table: per-image control words in one growable SharedArrayBuffer (layout in protocol/layout.ts).
 *
 * Only the server's main thread allocates and publishes slots; worker threads map the same buffer and
 * read it with Atomics. The buffer grows in place (a growable SAB), so a worker maps it once and sees new
 * slots without another message.
 *
 * With shared memory on, the table is instead a fixed-size segment sized for maxSlots (a mapped file cannot
 * grow under other processes' mappings), and every wake-up also reaches futex waiters in other processes.
 */
import { randomBytes } from 'node:crypto'
import { type FutexWake, wakeOtherProcesses } from '../../protocol/cross-process.js'
import { pxpError } from '../../protocol/errors.js'
import {
  fnv1a, HEADER, HEADER_WORDS, LAYOUT_VERSION, MAX_ID_BYTES, MAX_NDIM, SLOT, SLOT_STATE, SLOT_WORDS, shapeWord, slotBase, strideWord, TABLE_FLAG, tableBytes,
  type SlotFields,
} from '../../protocol/layout.js'
export type { SlotFields }
import { notifyCommit } from '../../protocol/sync.js'
import type { BlockMemory } from '../memory/block-provider.js'

const INITIAL_SLOTS = 64
const encoder = new TextEncoder()

export interface ImageTableOptions {
  /**
   * Fixed-size memory to hold the table (at least tableBytes(maxSlots), zero-filled), e.g. a shared-memory
   * segment other processes map. Default: a growable in-process SharedArrayBuffer.
   */
  memory?: BlockMemory
  /** The addon's futexWake: given, wake-ups also reach futex waiters in other processes. */
  futexWake?: FutexWake
  /** The memory holds a previous store's table (adoption): keep its header and records as they are. */
  adopted?: boolean
}

export class ImageTable {
  readonly buffer: SharedArrayBuffer
  readonly words: Int32Array
  readonly maxSlots: number
  /** Name of the shared-memory segment holding the table, or null when it is in process memory. */
  readonly segment: string | null
  /** Free slot indices below HIGH_WATER, kept sorted descending so pop() reuses the lowest. */
  private readonly freeSlots: number[] = []
  private highWater = 0
  private readonly futexWake: FutexWake | null

  constructor (maxSlots: number, options: ImageTableOptions = {}) {
    if (!Number.isInteger(maxSlots) || maxSlots < 1) throw new RangeError('maxImages must be a positive integer')
    this.maxSlots = maxSlots
    this.futexWake = options.futexWake ?? null
    if (options.memory === undefined) {
      const initial = Math.min(INITIAL_SLOTS, maxSlots)
      this.buffer = new SharedArrayBuffer(tableBytes(initial), { maxByteLength: tableBytes(maxSlots) })
      this.words = new Int32Array(this.buffer)
      this.segment = null
    } else {
      const bytes = tableBytes(maxSlots)
      if (options.memory.buffer.byteLength < bytes) throw new RangeError(`table memory of ${options.memory.buffer.byteLength} bytes is smaller than the ${bytes} bytes of ${maxSlots} slots`)
      this.buffer = options.memory.buffer
      this.words = new Int32Array(this.buffer, 0, bytes / Int32Array.BYTES_PER_ELEMENT)
      this.segment = options.memory.name
      this.words[HEADER.FLAGS] = TABLE_FLAG.SHARED
      // An adopted table keeps its attach key: processes that mapped it can still prove they did.
      if (options.adopted !== true) this.words.set(new Int32Array(randomBytes(8).buffer), HEADER.ATTACH_KEY)
    }
    this.words[HEADER.LAYOUT_VERSION] = LAYOUT_VERSION
    this.words[HEADER.SLOT_WORDS] = SLOT_WORDS
    this.words[HEADER.SLOT_CAPACITY] = maxSlots
  }

  /** Is the table in memory that other processes map? */
  get shared (): boolean {
    return this.segment !== null
  }

  /** Slots the buffer currently holds (it grows on demand up to maxSlots). */
  get mappedSlots (): number {
    return (this.words.length - HEADER_WORDS) / SLOT_WORDS
  }

  get slotsInUse (): number {
    return this.highWater - this.freeSlots.length
  }

  /** Reserve a slot index (not yet visible to anyone). Throws PXP_ERR_TOO_MANY_IMAGES when full. */
  allocSlot (): number {
    if (this.freeSlots.length > 0) return this.freeSlots.pop()!
    if (this.highWater >= this.maxSlots) throw pxpError('PXP_ERR_TOO_MANY_IMAGES', this.maxSlots)
    const slot = this.highWater
    // A fixed-size (shared) table already holds maxSlots.
    if (slot >= this.mappedSlots) {
      const slots = Math.min(this.maxSlots, this.mappedSlots * 2)
      this.buffer.grow(tableBytes(slots))
    }
    this.highWater++
    Atomics.store(this.words, HEADER.HIGH_WATER, this.highWater)
    return slot
  }

  /** After adoption: records below `highWater` not in `used` are free (server/store/adopt.ts). */
  adoptSlots (highWater: number, used: ReadonlySet<number>): void {
    this.highWater = highWater
    Atomics.store(this.words, HEADER.HIGH_WATER, highWater)
    this.freeSlots.length = 0
    for (let slot = highWater - 1; slot >= 0; slot--) if (!used.has(slot)) this.freeSlots.push(slot)
  }

  /** Give back a slot reserved with allocSlot but never published. */
  unreserve (slot: number): void {
    this.pushFree(slot)
  }

  /** Write every field, then make the slot LIVE: a reader that sees LIVE sees complete fields. */
  publish (slot: number, f: SlotFields): void {
    const idBytes = encoder.encode(f.id)
    // Checked before any word is written: a refused publish must not leave a half-overwritten record.
    if (idBytes.length > MAX_ID_BYTES) throw new RangeError('id too long for the table')
    const w = this.words
    const base = slotBase(slot)
    // LEASES is left alone: a worker racing a stale lookup may hold a transient +1 that it is about to
    // undo, and clearing the word under it would drive the count negative. FUTEX_WAITERS likewise: a waiter
    // in another process may still be leaving its wait on the previous image in this slot.
    w.fill(0, base + SLOT.SEQ, base + SLOT.LEASES)
    w.fill(0, base + SLOT.LEASES + 1, base + SLOT.FUTEX_WAITERS)
    w.fill(0, base + SLOT.FUTEX_WAITERS + 1, base + SLOT_WORDS)
    Atomics.add(w, base + SLOT.EPOCH, 1)
    w[base + SLOT.FLAGS] = f.flags
    w[base + SLOT.DTYPE] = f.dtype
    w[base + SLOT.MODE] = f.mode
    w[base + SLOT.NDIM] = f.shape.length
    w[base + SLOT.BLOCK] = f.block
    w[base + SLOT.BYTE_OFFSET] = f.byteOffset | 0
    w[base + SLOT.BYTE_LENGTH] = f.byteLength | 0
    w[base + SLOT.PARENT] = f.parent
    w[base + SLOT.FRAMES] = f.frames
    w[base + SLOT.FRONT] = 0
    w[base + SLOT.FRAME_STRIDE] = f.frameStride | 0
    for (let i = 0; i < MAX_NDIM; i++) {
      w[base + shapeWord(i)] = f.shape[i] ?? 0
      w[base + strideWord(i)] = f.strides[i] ?? 0
    }
    w[base + SLOT.ID_HASH] = fnv1a(idBytes)
    w[base + SLOT.ID_LENGTH] = idBytes.length
    const padded = new Uint8Array(MAX_ID_BYTES)
    padded.set(idBytes)
    w.set(new Int32Array(padded.buffer), base + SLOT.ID_BYTES)
    Atomics.store(w, base + SLOT.STATE, SLOT_STATE.LIVE)
    Atomics.add(w, HEADER.CATALOG_SEQ, 1)
    Atomics.notify(w, HEADER.CATALOG_SEQ)
  }

  /** Take the slot out of the catalog; its memory stays valid until its leases drop to 0. */
  retire (slot: number): void {
    Atomics.store(this.words, slotBase(slot) + SLOT.STATE, SLOT_STATE.DELETED)
    Atomics.add(this.words, HEADER.CATALOG_SEQ, 1)
    Atomics.notify(this.words, HEADER.CATALOG_SEQ)
    // Wake anyone waiting for a new generation of this image: it will never come.
    Atomics.notify(this.words, slotBase(slot) + SLOT.GENERATION)
    if (this.futexWake !== null) wakeOtherProcesses(this.words, slot, this.futexWake)
  }

  /**
   * Wake everyone waiting for a new generation of `slot` (a commit was made; the lock is released): waiters
   * in this process, the commit watcher, and with shared memory futex waiters in other processes.
   */
  notifyCommit (slot: number): void {
    // Other processes first: their wake-up is the slower one to arrive.
    if (this.futexWake !== null) wakeOtherProcesses(this.words, slot, this.futexWake)
    notifyCommit(this.words, slot)
  }

  /** Make a retired slot reusable. The EPOCH word survives so stale cached lookups can tell. */
  free (slot: number): void {
    const base = slotBase(slot)
    Atomics.store(this.words, base + SLOT.STATE, SLOT_STATE.FREE)
    this.pushFree(slot)
  }

  leases (slot: number): number {
    return Atomics.load(this.words, slotBase(slot) + SLOT.LEASES)
  }

  /** Add `delta` to the lease count of `slot`; returns the new count. */
  addLeases (slot: number, delta: number): number {
    return Atomics.add(this.words, slotBase(slot) + SLOT.LEASES, delta) + delta
  }

  word (slot: number, field: number): number {
    return Atomics.load(this.words, slotBase(slot) + field)
  }

  private pushFree (slot: number): void {
    // Keep descending order so the lowest free slot is reused first: lookups scan fewer slots.
    let i = this.freeSlots.length
    while (i > 0 && this.freeSlots[i - 1] < slot) i--
    this.freeSlots.splice(i, 0, slot)
  }
}
