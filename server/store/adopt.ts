/**
 * Adopting a dead store's table and blocks (`--recover`, server/memory/shm-adopt.ts found and checked them):
 * give back what its clients held, rebuild the allocator and the catalog from the table.
 *
 * Every lease, pin, loan and write lock in the table was taken by a process registered with the dead server:
 * its worker threads, its attached processes (their claims segments say what they held), Python clients for
 * which it held them itself, and the server. All those registrations died with it, so after the claims are
 * given back anything left is given back too. A write lock still held means a writer died mid-write (or was
 * cut off from the server): the seqlock is closed and what is there committed as a new generation, exactly
 * as for a dead worker thread, so a consistent read never returns a torn frame.
 */
import { dtypeByCode } from '../../protocol/dtypes.js'
import { modeByCode } from '../../protocol/modes.js'
import { CLAIM, CLAIM_WORDS, claimBase, MAX_FRAMES, SLOT, SLOT_FLAG, SLOT_STATE, slotBase } from '../../protocol/layout.js'
import { makeSpec } from '../../protocol/spec.js'
import { endWrite } from '../../protocol/sync.js'
import type { Allocation, RowRun } from '../memory/arena.js'
import type { AdoptedShm } from '../memory/shm-adopt.js'
import type { CheckedSlot } from '../memory/shm-table-check.js'
import type { ImageStore } from './image-store.js'

/** What adoption did, for the start-up log and `server.recovery`. */
export interface AdoptReport {
  storeId: string
  /** Images (views included) restored. */
  images: number
  views: number
  /** Write locks found held by writers that are gone: their frames were closed as new generations. */
  locksRecovered: number
  /** Of those, writes that were in progress (the seqlock was odd). */
  tornWritesClosed: number
  /** Leases, pins and loans given back (from claims segments and what was left over). */
  claimsReturned: number
  /** Deleted images still waiting for leases, and replicas of other nodes' images: dropped, memory freed. */
  dropped: number
  files: string[]
}

const ADOPT_LIMITS = { maxDimension: Number.MAX_SAFE_INTEGER, maxImageBytes: Number.MAX_SAFE_INTEGER }

export function adoptStore (store: ImageStore, adopted: AdoptedShm): AdoptReport {
  const words = store.table.words
  const { slots, highWater } = adopted.checked
  const report: AdoptReport = {
    storeId: adopted.storeId, images: 0, views: 0, locksRecovered: 0, tornWritesClosed: 0, claimsReturned: 0, dropped: 0, files: adopted.files,
  }
  // 1. What attached processes recorded in their claims segments.
  for (const memory of adopted.claims) {
    const claims = new Int32Array(memory.buffer, 0, Math.floor(memory.buffer.byteLength / 4))
    const end = Math.min(highWater, Math.floor(claims.length / CLAIM_WORDS))
    for (let slot = 0; slot < end; slot++) {
      const c = claimBase(slot)
      const leases = Atomics.exchange(claims, c + CLAIM.LEASES, 0)
      if (leases > 0) { Atomics.sub(words, slotBase(slot) + SLOT.LEASES, leases); report.claimsReturned += leases }
      for (let f = 0; f < MAX_FRAMES; f++) {
        const held = Atomics.exchange(claims, c + CLAIM.PINS + f, 0)
        if (held === -1) Atomics.compareExchange(words, slotBase(slot) + SLOT.PINS + f, -1, 0)
        else if (held > 0) Atomics.sub(words, slotBase(slot) + SLOT.PINS + f, held)
        if (held !== 0) report.claimsReturned++
      }
    }
    store.arena.provider.release(memory)
  }
  // 2. What the dead server held for itself, its threads and its socket clients, and every write lock.
  for (const s of slots) {
    const base = slotBase(s.slot)
    report.claimsReturned += Math.max(0, Atomics.exchange(words, base + SLOT.LEASES, 0))
    if (s.parent !== -1) continue
    for (let f = 0; f < MAX_FRAMES; f++) if (Atomics.exchange(words, base + SLOT.PINS + f, 0) !== 0) report.claimsReturned++
    if (Atomics.load(words, base + SLOT.WRITE_LOCK) !== 0) {
      report.locksRecovered++
      Atomics.store(words, base + SLOT.WRITE_LOCK, 0)
    }
    // Odd without a lock only happens when a writer cut off from a previous server finished its write
    // late: closed the same way, so readers never wait on it.
    if ((Atomics.load(words, base + SLOT.SEQ) & 1) !== 0) {
      endWrite(words, s.slot)
      report.tornWritesClosed++
    }
  }
  // 3. The allocator, from the blocks found and the allocations of the images kept.
  for (const [index, memory] of adopted.blocks) store.arena.adoptBlock(index, memory)
  const kept = new Set<number>()
  const keep = (s: CheckedSlot): boolean => s.state === SLOT_STATE.LIVE && (s.flags & SLOT_FLAG.REPLICA) === 0
  const bySlot = new Map(slots.map((s) => [s.slot, s]))
  for (const s of slots) {
    if (s.parent !== -1 || !keep(s)) continue
    let allocation: Allocation | null = null
    let runs: RowRun[] | null = null
    const rowBytes = s.byteLength / s.shape[0]
    if (s.runs !== null) {
      runs = s.runs.map(([block, offset, rows]) => ({ ...store.arena.adoptAllocation(block, offset, rows * rowBytes), rows }))
    } else {
      allocation = store.arena.adoptAllocation(s.block, s.byteOffset, s.frames > 1 ? s.frameStride * s.frames : s.byteLength)
    }
    store.restoreRecord({ ...common(s), allocation, runs, parentSlot: null, view: null })
    kept.add(s.slot)
    report.images++
  }
  for (const s of slots) {
    if (s.parent === -1 || !keep(s) || !kept.has(s.parent)) continue
    const root = bySlot.get(s.parent)!
    const offset = s.byteOffset - root.byteOffset
    const y = Math.floor(offset / root.strides[0])
    const x = (offset % root.strides[0]) / root.strides[1]
    store.restoreRecord({
      ...common(s), allocation: null, runs: null, parentSlot: root.slot, view: { parent: root.id, x, y, width: s.shape[1], height: s.shape[0] },
    })
    kept.add(s.slot)
    report.images++
    report.views++
  }
  // 4. Records not kept become free slots (a later create reuses them; their EPOCH keeps counting).
  for (const s of slots) {
    if (kept.has(s.slot)) continue
    Atomics.store(words, slotBase(s.slot) + SLOT.STATE, SLOT_STATE.FREE)
    report.dropped++
  }
  store.table.adoptSlots(highWater, kept)
  store.arena.finishAdoption()
  store.saveMeta()
  return report
}

function common (s: CheckedSlot): Omit<Parameters<ImageStore['restoreRecord']>[0], 'allocation' | 'runs' | 'parentSlot' | 'view'> {
  return {
    id: s.id,
    slot: s.slot,
    spec: makeSpec(s.shape, dtypeByCode(s.dtype), modeByCode(s.mode), ADOPT_LIMITS),
    readonly: (s.flags & SLOT_FLAG.READONLY) !== 0,
    layout: s.runs !== null ? 'lines' : 'block',
    block: s.block,
    byteOffset: s.byteOffset,
    strides: s.strides,
    frames: s.frames,
    frameStride: s.frameStride,
  }
}
