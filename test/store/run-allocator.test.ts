/**
 * RunAllocator against a model: a map of ALIGNMENT-sized units, each free or owned by one allocation.
 * The model is deliberately naive (first fit by linear scan) so that it is obviously right.
 */
import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import { ALIGNMENT, alignUp, RunAllocator } from '../../server/memory/run-allocator.js'

type Op = { kind: 'alloc', length: number } | { kind: 'free', pick: number }

class UnitModel {
  /** -1 when free, else the offset of the allocation that owns the unit. */
  readonly units: number[]
  constructor (readonly size: number) {
    this.units = new Array<number>(size / ALIGNMENT).fill(-1)
  }

  /** Offset the allocator must return for first fit, or -1. */
  firstFit (length: number): number {
    const need = alignUp(length) / ALIGNMENT
    let run = 0
    for (let i = 0; i < this.units.length; i++) {
      run = this.units[i] === -1 ? run + 1 : 0
      if (run === need) return (i - need + 1) * ALIGNMENT
    }
    return -1
  }

  take (offset: number, length: number): void {
    for (let u = offset / ALIGNMENT; u < (offset + alignUp(length)) / ALIGNMENT; u++) {
      assert.equal(this.units[u], -1, `unit ${u} handed out twice`)
      this.units[u] = offset
    }
  }

  release (offset: number): void {
    for (let u = 0; u < this.units.length; u++) if (this.units[u] === offset) this.units[u] = -1
  }

  used (): number {
    return this.units.filter((o) => o !== -1).length * ALIGNMENT
  }

  /** Maximal free runs: what a fully coalesced free list must contain, exactly. */
  freeRuns (): Array<{ offset: number, length: number }> {
    const runs: Array<{ offset: number, length: number }> = []
    for (let i = 0; i < this.units.length; i++) {
      if (this.units[i] !== -1) continue
      const last = runs[runs.length - 1]
      if (last !== undefined && last.offset + last.length === i * ALIGNMENT) last.length += ALIGNMENT
      else runs.push({ offset: i * ALIGNMENT, length: ALIGNMENT })
    }
    return runs
  }
}

// Inside properties we throw (node:assert) instead of calling tap: fast-check needs the throw to shrink,
// and thousands of tap assertions per run would drown the report.
function checkAgainstModel (a: RunAllocator, model: UnitModel, live: Map<number, number>): void {
  const runs = a.freeRuns()
  assert.deepEqual(runs, model.freeRuns(), 'free runs are exactly the maximal free runs of the model')
  for (let i = 1; i < runs.length; i++) {
    assert.ok(runs[i - 1].offset + runs[i - 1].length < runs[i].offset, `free runs ${i - 1} and ${i} touch or overlap: not coalesced`)
  }
  assert.equal(a.used, model.used())
  assert.equal(a.freeBytes, a.size - model.used())
  assert.equal(a.allocationCount, live.size)
  assert.equal(a.isEmpty, live.size === 0)
  assert.equal(a.largestFreeRun, Math.max(0, ...runs.map((r) => r.length)))
  for (const [offset, length] of live) assert.equal(a.lengthOf(offset), alignUp(length))
}

const opArb = (size: number): fc.Arbitrary<Op> => fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: size + ALIGNMENT * 2 }).map((length) => ({ kind: 'alloc' as const, length })) },
  // Mostly small requests so the block fills up and fragments.
  { weight: 3, arbitrary: fc.integer({ min: 1, max: ALIGNMENT * 4 }).map((length) => ({ kind: 'alloc' as const, length })) },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ kind: 'free' as const, pick })) },
)

t.test('random allocate/free sequences match the unit model', async (t) => {
  const sizeArb = fc.integer({ min: 1, max: 48 }).map((units) => units * ALIGNMENT)
  fc.assert(fc.property(sizeArb.chain((size) => fc.tuple(fc.constant(size), fc.array(opArb(size), { maxLength: 120 }))), ([size, ops]) => {
    const a = new RunAllocator(size)
    const model = new UnitModel(size)
    const live = new Map<number, number>()
    for (const op of ops) {
      if (op.kind === 'alloc') {
        const expected = model.firstFit(op.length)
        const offset = a.allocate(op.length)
        assert.equal(offset, expected, `allocate(${op.length}) must be first fit`)
        if (offset >= 0) {
          assert.equal(offset % ALIGNMENT, 0, 'aligned')
          assert.ok(offset + alignUp(op.length) <= size, 'inside the block')
          model.take(offset, op.length)
          live.set(offset, op.length)
        }
      } else if (live.size > 0) {
        const offset = [...live.keys()][op.pick % live.size]
        a.free(offset)
        model.release(offset)
        live.delete(offset)
      }
      checkAgainstModel(a, model, live)
    }
    // Free the rest in a random-ish order: the block must end up as one free run.
    for (const offset of [...live.keys()].reverse()) a.free(offset)
    assert.deepEqual(a.freeRuns(), [{ offset: 0, length: size }])
    assert.equal(a.used, 0)
    assert.ok(a.isEmpty)
  }), { numRuns: 300 })
  t.pass('300 random sequences matched the model')
})

t.test('freeing in every order coalesces back to one run', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 2, max: 12 }).chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }))), ([n, order]) => {
    const a = new RunAllocator(n * ALIGNMENT)
    const offsets = Array.from({ length: n }, () => a.allocate(ALIGNMENT))
    assert.equal(a.largestFreeRun, 0)
    assert.equal(a.allocate(1), -1, 'a full block refuses even one byte')
    for (const i of order) a.free(offsets[i])
    assert.deepEqual(a.freeRuns(), [{ offset: 0, length: n * ALIGNMENT }])
  }))
  t.pass('every free order coalesced')
})

t.test('exact fit removes the free run; a request for the whole block succeeds once', async (t) => {
  const a = new RunAllocator(4 * ALIGNMENT)
  t.equal(a.allocate(4 * ALIGNMENT), 0)
  t.same(a.freeRuns(), [])
  t.equal(a.allocate(1), -1)
  a.free(0)
  t.equal(a.allocate(4 * ALIGNMENT + 1), -1, 'one byte more than the block never fits')
  t.equal(a.allocate(1), 0)
  t.equal(a.lengthOf(0), ALIGNMENT, 'lengths are rounded up to ALIGNMENT')
})

t.test('bad input is refused with RangeError and changes nothing', async (t) => {
  for (const size of [0, -64, 63, 100, 1.5 * ALIGNMENT, Number.NaN]) t.throws(() => new RunAllocator(size), RangeError, `size ${size}`)
  const a = new RunAllocator(8 * ALIGNMENT)
  const at = a.allocate(10)
  for (const length of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) t.throws(() => a.allocate(length), RangeError, `length ${length}`)
  t.throws(() => a.free(at + ALIGNMENT), RangeError, 'freeing an offset that was never handed out')
  a.free(at)
  t.throws(() => a.free(at), RangeError, 'double free')
  t.same(a.freeRuns(), [{ offset: 0, length: 8 * ALIGNMENT }])
  t.equal(a.used, 0)
})

t.test('alignUp', async (t) => {
  t.equal(alignUp(0), 0)
  t.equal(alignUp(1), ALIGNMENT)
  t.equal(alignUp(ALIGNMENT), ALIGNMENT)
  t.equal(alignUp(ALIGNMENT + 1), 2 * ALIGNMENT)
  t.equal(alignUp(5, 4), 8)
})
