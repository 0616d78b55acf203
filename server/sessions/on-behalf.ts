/**
 * Leases, write locks and frame loans the server takes on a client's behalf, for clients without atomic
 * instructions (Python with numpy over the attach socket). Each is recorded in the session's claims, under
 * the session's token, exactly as a client with atomics would record it itself, so the one recovery path
 * (Session.close → recoverClaims) gives it back when the client goes.
 */
import { pxpError } from '../../protocol/errors.js'
import { CLAIM, claimBase, MAX_FRAMES, SLOT, SLOT_FLAG, slotBase } from '../../protocol/layout.js'
import type { SessionOpened } from '../../protocol/session-messages.js'
import { controlSlotOf } from '../../protocol/slot-reader.js'
import {
  beginWrite, cancelLoan, endWrite, generationOf, loanFrame, lockAsync, lockHolder, publishFrame, unlock,
} from '../../protocol/sync.js'
import type { Session } from './session.js'

/** The claims of a greeted session (every op here comes after hello). */
function claimsOf (s: Session): Int32Array {
  return s.claims!
}

export function open (s: Session, id: string): SessionOpened {
  const slot = s.store.slotOf(id)
  s.store.table.addLeases(slot, 1)
  Atomics.add(claimsOf(s), claimBase(slot) + CLAIM.LEASES, 1)
  return { slot, epoch: s.store.table.word(slot, SLOT.EPOCH), descriptor: s.store.describe(id) }
}

/** `slot` if this session holds a lease on it, else PXP_ERR_VALIDATION. */
export function leased (s: Session, slot: unknown): number {
  if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= s.store.table.maxSlots ||
    Atomics.load(claimsOf(s), claimBase(slot) + CLAIM.LEASES) <= 0) {
    throw pxpError('PXP_ERR_VALIDATION', `slot ${String(slot)} is not open on this connection`)
  }
  return slot
}

export function closeHandle (s: Session, slot: number): void {
  Atomics.sub(claimsOf(s), claimBase(slot) + CLAIM.LEASES, 1)
  if (s.store.table.addLeases(slot, -1) === 0) s.store.reclaimSlot(slot)
}

/** The control slot of a writable image (views write through their root's words). */
function writable (s: Session, slot: number): number {
  const words = s.store.table.words
  const live = s.store.describeSlot(slot)
  if (live === undefined) throw pxpError('PXP_ERR_NOT_FOUND', `slot ${slot}`)
  if ((words[slotBase(slot) + SLOT.FLAGS] & SLOT_FLAG.READONLY) !== 0) throw pxpError('PXP_ERR_READONLY', live.id)
  return controlSlotOf(words, slot)
}

function timeoutOf (s: Session, timeoutMs: unknown): number {
  if (timeoutMs === undefined) return s.store.lockTimeoutMs
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw pxpError('PXP_ERR_VALIDATION', 'timeoutMs must be a number >= 0')
  return timeoutMs
}

function lockTimedOut (s: Session, timeout: number, slot: number): Error {
  return pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, s.store.describeSlot(slot)?.id ?? `slot ${slot}`)
}

/** The client may have gone while we waited: recovery has run, so what we just took is given straight back. */
function gone (): Error {
  return pxpError('PXP_ERR_CLOSED', 'attach connection')
}

export async function begin (s: Session, slot: number, timeoutMs: unknown): Promise<{ generation: number }> {
  const words = s.store.table.words
  const control = writable(s, slot)
  if (words[slotBase(control) + SLOT.FRAMES] > 1) throw pxpError('PXP_ERR_VALIDATION', 'a frame-buffered image is written with loan and publish')
  if (lockHolder(words, control) === s.token) throw pxpError('PXP_ERR_VALIDATION', 'a write is already begun on this image')
  const timeout = timeoutOf(s, timeoutMs)
  if (!await lockAsync(words, control, s.token, timeout)) throw lockTimedOut(s, timeout, slot)
  if (s.isClosed) {
    unlock(words, control, s.token)
    throw gone()
  }
  beginWrite(words, control)
  return { generation: generationOf(words, control) }
}

export function commit (s: Session, slot: number): { generation: number } {
  const words = s.store.table.words
  const control = controlSlotOf(words, slot)
  if (lockHolder(words, control) !== s.token) throw pxpError('PXP_ERR_VALIDATION', 'no write was begun on this image')
  const generation = endWrite(words, control)
  unlock(words, control, s.token)
  s.store.table.notifyCommit(control)
  return { generation }
}

export async function loan (s: Session, slot: number, timeoutMs: unknown): Promise<{ frame: number }> {
  const words = s.store.table.words
  const control = writable(s, slot)
  if (words[slotBase(control) + SLOT.FRAMES] <= 1) throw pxpError('PXP_ERR_VALIDATION', 'only frame-buffered images (frames >= 2) loan frame buffers')
  const timeout = timeoutOf(s, timeoutMs)
  const deadline = performance.now() + timeout
  let frame = loanFrame(words, control)
  // Every other buffer is pinned or loaned: look again until one frees up.
  while (frame < 0) {
    if (performance.now() >= deadline) throw lockTimedOut(s, timeout, slot)
    await new Promise((resolve) => setTimeout(resolve, 1))
    if (s.isClosed) throw gone()
    frame = loanFrame(words, control)
  }
  if (s.isClosed) {
    cancelLoan(words, control, frame)
    throw gone()
  }
  Atomics.store(claimsOf(s), claimBase(control) + CLAIM.PINS + frame, -1)
  return { frame }
}

/** The control slot and frame of a buffer on loan to this session, else PXP_ERR_VALIDATION. */
function loaned (s: Session, slot: number, frame: unknown): { control: number, frame: number } {
  const control = controlSlotOf(s.store.table.words, slot)
  if (typeof frame !== 'number' || !Number.isInteger(frame) || frame < 0 || frame >= MAX_FRAMES ||
    Atomics.load(claimsOf(s), claimBase(control) + CLAIM.PINS + frame) !== -1) {
    throw pxpError('PXP_ERR_VALIDATION', `frame ${String(frame)} is not on loan to this connection`)
  }
  return { control, frame }
}

export async function publish (s: Session, slot: number, frameArg: unknown, timeoutMs: unknown): Promise<{ generation: number }> {
  const words = s.store.table.words
  const { control, frame } = loaned(s, slot, frameArg)
  const timeout = timeoutOf(s, timeoutMs)
  if (!await lockAsync(words, control, s.token, timeout)) throw lockTimedOut(s, timeout, slot)
  if (s.isClosed) {
    unlock(words, control, s.token)
    throw gone()
  }
  let generation: number
  try {
    generation = publishFrame(words, control, frame)
    Atomics.store(claimsOf(s), claimBase(control) + CLAIM.PINS + frame, 0)
  } finally {
    unlock(words, control, s.token)
  }
  s.store.table.notifyCommit(control)
  return { generation }
}

export function cancel (s: Session, slot: number, frameArg: unknown): void {
  const { control, frame } = loaned(s, slot, frameArg)
  Atomics.store(claimsOf(s), claimBase(control) + CLAIM.PINS + frame, 0)
  cancelLoan(s.store.table.words, control, frame)
}
