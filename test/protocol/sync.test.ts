/**
 * The seqlock, write lock and frame-buffer functions over one slot's words, in one thread (the
 * cross-thread behaviour is tested with a real worker in test/store/consistency.test.ts).
 */
import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import { HEADER, MAX_FRAMES, SLOT, slotBase, tableBytes } from '../../protocol/layout.js'
import {
  beginWrite, cancelLoan, endWrite, framesOf, generationOf, loanFrame, lockAsync, lockHolder, notifyCommit, pinFront, publishFrame,
  readOptimistic, readSeq, tryLock, unlock, unpin,
} from '../../protocol/sync.js'
import { settle } from '../helpers/atomics.js'

const SLOT_N = 1

function table (frames = 1): Int32Array {
  const words = new Int32Array(new SharedArrayBuffer(tableBytes(2)))
  words[slotBase(SLOT_N) + SLOT.FRAMES] = frames
  return words
}

t.test('write lock: one holder, released only by its token', async (t) => {
  const w = table()
  t.equal(lockHolder(w, SLOT_N), 0)
  t.ok(tryLock(w, SLOT_N, 7))
  t.notOk(tryLock(w, SLOT_N, 8), 'held')
  t.notOk(tryLock(w, SLOT_N, 7), 'not re-entrant')
  t.equal(lockHolder(w, SLOT_N), 7)
  t.notOk(unlock(w, SLOT_N, 8), 'another token cannot release it')
  t.equal(lockHolder(w, SLOT_N), 7)
  t.ok(unlock(w, SLOT_N, 7))
  t.notOk(unlock(w, SLOT_N, 7), 'release twice')
  t.equal(lockHolder(w, SLOT_N), 0)
  t.equal(w[slotBase(0) + SLOT.WRITE_LOCK], 0, 'other slots untouched')
})

t.test('lockAsync: immediate when free, woken by unlock, false on timeout', async (t) => {
  const w = table()
  t.equal(await lockAsync(w, SLOT_N, 1, 1000), true)
  const waiting = lockAsync(w, SLOT_N, 2, 5000)
  setImmediate(() => unlock(w, SLOT_N, 1))
  t.equal(await waiting, true, 'taken once the holder let go')
  t.equal(lockHolder(w, SLOT_N), 2)
  const started = performance.now()
  t.equal(await lockAsync(w, SLOT_N, 3, 30), false)
  t.ok(performance.now() - started >= 29, 'waited out the timeout')
  t.equal(lockHolder(w, SLOT_N), 2, 'a timed-out waiter changes nothing')
})

t.test('beginWrite/endWrite: odd while writing, a new generation after; notifyCommit wakes waiters', async (t) => {
  const w = table()
  t.equal(readSeq(w, SLOT_N), 0)
  const waiter = Atomics.waitAsync(w, slotBase(SLOT_N) + SLOT.GENERATION, 0, 5000)
  beginWrite(w, SLOT_N)
  t.equal(readSeq(w, SLOT_N) & 1, 1)
  t.equal(generationOf(w, SLOT_N), 0, 'the generation moves only at the commit')
  t.equal(endWrite(w, SLOT_N), 1)
  t.equal(readSeq(w, SLOT_N), 2)
  const commits = Atomics.waitAsync(w, HEADER.COMMIT_SEQ, 0, 5000)
  notifyCommit(w, SLOT_N)
  t.equal(await settle(waiter), 'ok', 'generation waiters woken')
  t.equal(await settle(commits), 'ok', 'the commit watcher woken')
  t.equal(w[HEADER.COMMIT_SEQ], 1)
  // Generations are unsigned 32-bit: they wrap instead of going negative.
  w[slotBase(SLOT_N) + SLOT.GENERATION] = -1
  t.equal(generationOf(w, SLOT_N), 2 ** 32 - 1)
  beginWrite(w, SLOT_N)
  t.equal(endWrite(w, SLOT_N), 0)
})

t.test('readOptimistic: accepts a quiet read, retries an overlapped one, gives up while a write is open', async (t) => {
  const w = table()
  beginWrite(w, SLOT_N)
  endWrite(w, SLOT_N)
  let calls = 0
  t.equal(readOptimistic(w, SLOT_N, () => { calls++ }), 1)
  t.equal(calls, 1)
  // A commit lands during the first read: that read is thrown away, the second is accepted.
  calls = 0
  const g = readOptimistic(w, SLOT_N, () => {
    if (calls++ === 0) {
      beginWrite(w, SLOT_N)
      endWrite(w, SLOT_N)
    }
  })
  t.equal(g, 2, 'the generation of the read that was accepted')
  t.equal(calls, 2)
  // A write that starts during a read and is still open.
  calls = 0
  t.equal(readOptimistic(w, SLOT_N, () => { calls++; if (calls === 1) beginWrite(w, SLOT_N) }, 3), -1)
  t.equal(calls, 1, 'no read is attempted while the sequence is odd')
  endWrite(w, SLOT_N)
  calls = 0
  t.equal(readOptimistic(w, SLOT_N, () => { calls++; beginWrite(w, SLOT_N); endWrite(w, SLOT_N) }, 5), -1, 'every attempt overlapped')
  t.equal(calls, 5)
})

type FrameOp = { kind: 'pin' } | { kind: 'unpin', pick: number } | { kind: 'loan' } | { kind: 'cancel', pick: number } | { kind: 'publish', pick: number }

t.test('frame buffers against a model: loans never touch the front or a pinned buffer', async (t) => {
  const opArb: fc.Arbitrary<FrameOp> = fc.oneof(
    fc.constant({ kind: 'pin' as const }),
    fc.nat().map((pick) => ({ kind: 'unpin' as const, pick })),
    fc.constant({ kind: 'loan' as const }),
    fc.nat().map((pick) => ({ kind: 'cancel' as const, pick })),
    fc.nat().map((pick) => ({ kind: 'publish' as const, pick })),
  )
  fc.assert(fc.property(fc.integer({ min: 2, max: MAX_FRAMES }), fc.array(opArb, { maxLength: 60 }), (frames, ops) => {
    const w = table(frames)
    const base = slotBase(SLOT_N)
    assert.equal(framesOf(w, SLOT_N), frames)
    let front = 0
    let generation = 0
    const pins = new Array<number>(frames).fill(0)
    const loaned = new Set<number>()
    const held: number[] = []
    for (const op of ops) {
      if (op.kind === 'pin') {
        assert.deepEqual(pinFront(w, SLOT_N), { frame: front, generation })
        pins[front]++
        held.push(front)
      } else if (op.kind === 'unpin' && held.length > 0) {
        const [f] = held.splice(op.pick % held.length, 1)
        unpin(w, SLOT_N, f)
        pins[f]--
      } else if (op.kind === 'loan') {
        let expected = -1
        for (let k = 1; k < frames && expected < 0; k++) {
          const f = (front + k) % frames
          if (pins[f] === 0 && !loaned.has(f)) expected = f
        }
        assert.equal(loanFrame(w, SLOT_N), expected)
        if (expected >= 0) loaned.add(expected)
      } else if (op.kind === 'cancel' && loaned.size > 0) {
        const f = [...loaned][op.pick % loaned.size]
        cancelLoan(w, SLOT_N, f)
        loaned.delete(f)
      } else if (op.kind === 'publish' && loaned.size > 0) {
        const f = [...loaned][op.pick % loaned.size]
        assert.ok(tryLock(w, SLOT_N, 1))
        assert.equal(publishFrame(w, SLOT_N, f), ++generation)
        unlock(w, SLOT_N, 1)
        loaned.delete(f)
        front = f
      }
      assert.ok(!loaned.has(front), 'the front is never on loan')
      for (let f = 0; f < frames; f++) {
        assert.equal(w[base + SLOT.PINS + f], loaned.has(f) ? -1 : pins[f], `pins word of frame ${f}`)
        assert.ok(!(loaned.has(f) && pins[f] > 0), 'a pinned buffer is never loaned')
      }
      assert.equal(w[base + SLOT.FRONT], front)
      assert.equal(readSeq(w, SLOT_N) & 1, 0)
    }
  }), { numRuns: 300 })
  t.pass('300 sequences')
})

t.test('pinFront gives up while a publish is open', async (t) => {
  const w = table(2)
  beginWrite(w, SLOT_N)
  t.equal(pinFront(w, SLOT_N, 5), null)
  endWrite(w, SLOT_N)
  t.same(pinFront(w, SLOT_N), { frame: 0, generation: 1 })
})
