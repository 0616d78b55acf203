/**
 * Waking waiters in other processes. `Atomics.notify` only reaches waiters in its own process; a waiter in
 * another process sleeps in a futex on the same word and registers in the slot's FUTEX_WAITERS, so a
 * writer pays for the wake-up system call only when such a waiter exists (layout.ts has the protocol).
 *
 * The futex itself comes from the native addon; it is passed in so that protocol/ depends on no native code.
 */
import { HEADER, SLOT, slotBase, TABLE_FLAG } from './layout.js'

/** The addon's futexWake: wake up to `count` futex waiters on the int32 at `byteOffset` (any process). */
export type FutexWake = (buffer: SharedArrayBuffer, byteOffset: number, count?: number) => number

/** Is this table in a segment that other processes map (so cross-process wakes are needed)? */
export function isSharedTable (table: Int32Array): boolean {
  return (Atomics.load(table, HEADER.FLAGS) & TABLE_FLAG.SHARED) !== 0
}

/** Byte offset of a slot word inside the table (the table starts at byte 0 of its buffer). */
export function wordOffset (slot: number, field: number): number {
  return (slotBase(slot) + field) * Int32Array.BYTES_PER_ELEMENT
}

/**
 * Wake futex waiters (other processes) on GENERATION of `slot`, if any registered. Call it next to the
 * in-process notifyCommit(), once the lock is released: the order of the two does not matter.
 */
export function wakeOtherProcesses (table: Int32Array, slot: number, futexWake: FutexWake): void {
  // The waiter adds itself before it compares GENERATION, and we read the count after GENERATION moved: with
  // both sides sequentially consistent, either it sees the new generation or we see it registered.
  if (Atomics.load(table, slotBase(slot) + SLOT.FUTEX_WAITERS) > 0) {
    futexWake(table.buffer as SharedArrayBuffer, wordOffset(slot, SLOT.GENERATION))
  }
}

/** What a writer outside the server's process does after each commit: tell the server's relay thread. */
export function ringServer (table: Int32Array, futexWake: FutexWake): void {
  Atomics.add(table, HEADER.EXTERNAL_COMMITS, 1)
  futexWake(table.buffer as SharedArrayBuffer, HEADER.EXTERNAL_COMMITS * Int32Array.BYTES_PER_ELEMENT)
}
