/**
 * Giving back what a departed client held. Every client that touches the image table directly (a worker
 * thread, a process attached over the attach socket) records its leases, pins and loans in its own claims
 * array (layout.ts CLAIM_*); when it goes away, however it went, the server undoes exactly those.
 */
import { CLAIM, claimBase, HEADER, MAX_FRAMES, SLOT, slotBase } from '../../protocol/layout.js'
import { cancelLoan, endWrite, lockHolder, unlock } from '../../protocol/sync.js'
import type { ImageStore } from './image-store.js'

/**
 * Return the leases, pins and loans recorded in `claims`, and the write lock if `token` still holds one.
 * The client must be gone (or no longer able to touch the table): its claims are zeroed as they are read.
 */
export function recoverClaims (store: ImageStore, claims: Int32Array, token: number): void {
  const table = store.table
  const words = table.words
  const highWater = Math.min(table.maxSlots, Atomics.load(words, HEADER.HIGH_WATER))
  for (let slot = 0; slot < highWater; slot++) {
    const c = claimBase(slot)
    const base = slotBase(slot)
    const leases = Atomics.exchange(claims, c + CLAIM.LEASES, 0)
    if (leases > 0) table.addLeases(slot, -leases)
    for (let f = 0; f < MAX_FRAMES; f++) {
      const held = Atomics.exchange(claims, c + CLAIM.PINS + f, 0)
      if (held === -1) cancelLoan(words, slot, f)
      else if (held > 0) Atomics.sub(words, base + SLOT.PINS + f, held)
    }
    if (lockHolder(words, slot) === token) {
      // It died mid-write: close the seqlock so readers stop retrying, and commit what is there as a new
      // generation (announced, so subscribers re-read) rather than leave the image wedged.
      const torn = (Atomics.load(words, base + SLOT.SEQ) & 1) !== 0
      if (torn) endWrite(words, slot)
      unlock(words, slot, token)
      if (torn) table.notifyCommit(slot)
    }
    store.reclaimSlot(slot)
  }
}
