/**
 * Arena: random sequences of allocate / allocateRows / free, checked after every step against what the
 * test itself remembers handing out, plus the scenarios the random runs reach only by luck.
 */
import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import { Arena, type Allocation, type ArenaStats } from '../../server/memory/arena.js'
import { HeapBlockProvider, type BlockMemory } from '../../server/memory/block-provider.js'
import { ALIGNMENT, alignUp } from '../../server/memory/run-allocator.js'

/** The real heap provider, counting what is outstanding so leaks of released blocks show up. */
class CountingProvider extends HeapBlockProvider {
  readonly outstanding = new Set<BlockMemory>()
  closed = 0
  override allocate (byteLength: number): BlockMemory {
    const m = super.allocate(byteLength)
    this.outstanding.add(m)
    return m
  }

  override release (memory: BlockMemory): void {
    assert.ok(this.outstanding.delete(memory), 'released a block twice or one it never gave out')
    super.release(memory)
  }

  override close (): void {
    this.closed++
  }
}

const BLOCK = 16 * ALIGNMENT

type Op =
  | { kind: 'alloc', length: number }
  | { kind: 'rows', rowBytes: number, rows: number, perRow: boolean }
  | { kind: 'free', pick: number }
  | { kind: 'probe' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: BLOCK / 2 }).map((length) => ({ kind: 'alloc' as const, length })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * BLOCK }).map((length) => ({ kind: 'alloc' as const, length })) },
  {
    weight: 2,
    arbitrary: fc.record({ rowBytes: fc.integer({ min: 1, max: BLOCK + ALIGNMENT }), rows: fc.integer({ min: 1, max: 12 }), perRow: fc.boolean() })
      .map((r) => ({ kind: 'rows' as const, ...r })),
  },
  { weight: 5, arbitrary: fc.nat().map((pick) => ({ kind: 'free' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'probe' as const }) },
)

interface Held { readonly allocations: Allocation[] }

class Checker {
  readonly held: Held[] = []
  private highestIndex = -1

  constructor (readonly arena: Arena, readonly provider: CountingProvider) {}

  live (): Allocation[] {
    return this.held.flatMap((h) => h.allocations)
  }

  noteNew (a: Allocation, requested: number): void {
    assert.equal(a.length, alignUp(requested), 'length is the request rounded to ALIGNMENT')
    assert.equal(a.offset % ALIGNMENT, 0, 'offset aligned')
    const block = this.arena.block(a.block)
    assert.ok(block !== undefined, 'allocation in an existing block')
    assert.equal(block.dedicated, a.length > this.arena.blockSize, 'dedicated exactly when larger than a block')
  }

  check (): void {
    const { arena } = this
    const s = arena.stats()
    const blocks = arena.allBlocks()
    const live = this.live()
    assert.ok(s.reserved <= s.capacity, `reserved ${s.reserved} exceeds capacity ${s.capacity}`)
    assert.equal(s.reserved, blocks.reduce((n, b) => n + b.allocator.size, 0))
    assert.equal(this.provider.outstanding.size, blocks.length, 'every dropped block went back to the provider')
    assert.equal(s.blocks, blocks.length)
    assert.equal(s.dedicatedBlocks, blocks.filter((b) => b.dedicated).length)
    const used = live.reduce((n, a) => n + a.length, 0)
    assert.equal(s.used, used)
    assert.equal(arena.used, used)
    assert.equal(s.free, s.capacity - used)
    assert.equal(blocks.reduce((n, b) => n + b.allocator.used, 0), used)
    for (const b of blocks) {
      // Indices only ever grow: a worker's index → buffer cache can never point at the wrong block.
      if (b.index > this.highestIndex) this.highestIndex = b.index
      if (b.dedicated) {
        assert.equal(b.allocator.allocationCount, 1, 'a dedicated block holds one image')
        assert.equal(b.allocator.used, b.allocator.size)
      } else {
        assert.ok(b.allocator.size <= arena.blockSize, 'shared blocks are at most blockSize')
      }
    }
    const byBlock = new Map<number, Allocation[]>()
    for (const a of live) {
      const block = arena.block(a.block)
      assert.ok(block !== undefined)
      assert.equal(block.allocator.lengthOf(a.offset), a.length)
      assert.ok(a.offset + a.length <= block.allocator.size)
      byBlock.set(a.block, [...(byBlock.get(a.block) ?? []), a])
    }
    for (const list of byBlock.values()) {
      list.sort((x, y) => x.offset - y.offset)
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].offset + list[i - 1].length <= list[i].offset, 'live allocations overlap')
    }
    assert.equal(blocks.reduce((n, b) => n + b.allocator.allocationCount, 0), live.length, 'no allocation the test does not know of')
  }

  assertNewBlocksOnly (before: number[]): void {
    for (const b of this.arena.allBlocks()) {
      if (!before.includes(b.index)) assert.ok(b.index > Math.max(-1, ...before), `block index ${b.index} reused`)
    }
  }
}

function sameStats (a: ArenaStats, b: ArenaStats, what: string): void {
  assert.deepEqual(a, b, `${what}: a failed operation changed the arena`)
}

function run (capacity: number, ops: Op[]): void {
  const provider = new CountingProvider()
  const arena = new Arena({ provider, blockSize: BLOCK, capacity })
  const c = new Checker(arena, provider)
  for (const op of ops) {
    const before = arena.stats()
    const indices = arena.allBlocks().map((b) => b.index)
    if (op.kind === 'alloc') {
      const a = arena.tryAllocate(op.length)
      // largestFreeRun is the promise callers rely on: it must predict success exactly.
      assert.equal(a !== null, alignUp(op.length) <= before.largestFreeRun, `tryAllocate(${op.length}) vs largestFreeRun ${before.largestFreeRun}`)
      if (a === null) sameStats(arena.stats(), before, 'tryAllocate')
      else {
        c.noteNew(a, op.length)
        c.held.push({ allocations: [a] })
      }
    } else if (op.kind === 'rows') {
      try {
        const runs = arena.allocateRows(op.rowBytes, op.rows, op.perRow)
        assert.equal(runs.reduce((n, r) => n + r.rows, 0), op.rows, 'every row placed once')
        for (const r of runs) {
          c.noteNew(r, r.rows * op.rowBytes)
          if (op.perRow) assert.equal(r.rows, 1)
        }
        c.held.push({ allocations: runs })
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'PXP_ERR_CAPACITY')
        // All or nothing: no run survives a failure, no memory is counted.
        assert.equal(arena.used, before.used)
        assert.equal(arena.stats().largestFreeRun, before.largestFreeRun)
        for (const b of arena.allBlocks()) assert.ok(indices.includes(b.index), 'a failed allocateRows left a new block behind')
      }
    } else if (op.kind === 'free') {
      if (c.held.length > 0) {
        const [h] = c.held.splice(op.pick % c.held.length, 1)
        for (const a of h.allocations) {
          const dedicated = arena.block(a.block)!.dedicated
          arena.free(a)
          if (dedicated) assert.equal(arena.block(a.block), undefined, 'a dedicated block is released with its image')
        }
      }
    } else {
      const L = before.largestFreeRun
      assert.equal(arena.tryAllocate(L + 1), null, `largestFreeRun ${L} + 1 byte must fail`)
      sameStats(arena.stats(), before, 'largestFreeRun + 1')
      if (L > 0) {
        const a = arena.tryAllocate(L)
        assert.ok(a !== null, `an allocation of largestFreeRun ${L} must succeed`)
        c.noteNew(a, L)
        arena.free(a)
        assert.equal(arena.used, before.used)
      }
    }
    c.assertNewBlocksOnly(indices)
    c.check()
  }
  for (const h of c.held) for (const a of h.allocations) arena.free(a)
  c.held.length = 0
  c.check()
  const end = arena.stats()
  assert.equal(end.used, 0)
  assert.equal(end.dedicatedBlocks, 0, 'no dedicated block outlives its image')
  assert.equal(end.largestFreeRun, end.capacity, 'an empty arena can hand out its whole capacity')
  arena.close()
  assert.equal(provider.outstanding.size, 0, 'close releases every block')
  assert.equal(provider.closed, 1)
}

t.test('random sequences keep every arena invariant', async (t) => {
  // Capacity from a fraction of a block to several blocks, often not a multiple of the block size.
  const capacityArb = fc.integer({ min: 1, max: 8 * BLOCK / ALIGNMENT }).map((units) => units * ALIGNMENT + (units % 3) * 7)
  fc.assert(fc.property(capacityArb, fc.array(opArb, { maxLength: 80 }), run), { numRuns: 300 })
  t.pass('300 random sequences kept every invariant')
})

t.test('empty shared blocks are reclaimed when a dedicated block needs the capacity', async (t) => {
  const provider = new CountingProvider()
  const arena = new Arena({ provider, blockSize: BLOCK, capacity: 4 * BLOCK })
  const small = Array.from({ length: 4 }, () => arena.allocate(BLOCK))
  t.equal(arena.stats().blocks, 4)
  t.equal(arena.tryAllocate(1), null, 'full')
  for (const a of small) arena.free(a)
  t.equal(arena.stats().blocks, 4, 'empty shared blocks are kept for reuse')
  t.equal(arena.stats().largestFreeRun, 4 * BLOCK, 'but they count as free')
  const big = arena.allocate(3 * BLOCK)
  t.equal(arena.block(big.block)!.dedicated, true)
  t.equal(arena.stats().blocks, 2, 'three empty blocks were dropped to make room, one kept')
  t.equal(provider.outstanding.size, 2)
  t.equal(arena.tryAllocate(BLOCK + 1), null, 'only one block of capacity left')
  const last = arena.allocate(BLOCK)
  t.notOk(arena.block(last.block)!.dedicated)
  arena.free(big)
  t.equal(arena.block(big.block), undefined)
  t.equal(arena.stats().blocks, 1)
  arena.free(last)
  arena.close()
  t.equal(provider.outstanding.size, 0)
})

t.test('the last block is smaller when capacity is not a multiple of the block size', async (t) => {
  const arena = new Arena({ provider: new HeapBlockProvider(), blockSize: BLOCK, capacity: 2 * BLOCK + BLOCK / 2 + 10 })
  t.equal(arena.capacity, 2 * BLOCK + BLOCK / 2, 'capacity rounded down to ALIGNMENT')
  arena.allocate(BLOCK)
  arena.allocate(BLOCK)
  t.equal(arena.stats().largestFreeRun, BLOCK / 2)
  const a = arena.allocate(BLOCK / 2)
  t.equal(arena.block(a.block)!.allocator.size, BLOCK / 2)
  t.equal(arena.stats().reserved, arena.capacity)
  t.equal(arena.stats().largestFreeRun, 0)
  t.throws(() => arena.allocate(1), { code: 'PXP_ERR_CAPACITY' })
})

t.test('allocateRows: per-row, largest runs first, and all or nothing', async (t) => {
  const arena = new Arena({ provider: new HeapBlockProvider(), blockSize: BLOCK, capacity: 2 * BLOCK })
  const rows = arena.allocateRows(100, 5, true)
  t.equal(rows.length, 5)
  t.ok(rows.every((r) => r.rows === 1 && r.length === alignUp(100)))
  for (const r of rows) arena.free(r)
  // Fragment block 0 into holes of 4 and 2 units (1 unit between them stays used).
  const parts = [4, 1, 2, 1].map((u) => arena.allocate(u * ALIGNMENT))
  const rest = arena.allocate(BLOCK - 8 * ALIGNMENT)
  arena.free(parts[0])
  arena.free(parts[2])
  const second = arena.allocate(BLOCK)
  t.equal(arena.stats().largestFreeRun, 4 * ALIGNMENT)
  const runs = arena.allocateRows(ALIGNMENT, 6, false)
  t.same(runs.map((r) => r.rows), [4, 2], 'the largest hole first')
  for (const r of runs) arena.free(r)
  const before = arena.stats()
  // 7 rows need 7 units; only 6 are free.
  t.throws(() => arena.allocateRows(ALIGNMENT, 7, false), { code: 'PXP_ERR_CAPACITY' })
  t.same(arena.stats(), before, 'a failed allocateRows leaves nothing behind')
  // Enough bytes in total, but rounding every run up to ALIGNMENT does not fit: must fail cleanly too.
  t.throws(() => arena.allocateRows(ALIGNMENT + 1, 5, true), { code: 'PXP_ERR_CAPACITY' })
  t.same(arena.stats(), before)
  arena.free(rest)
  arena.free(second)
  arena.free(parts[1])
  arena.free(parts[3])
  t.equal(arena.used, 0)
})

t.test('a failed line allocation that opened a new block gives the block back', async (t) => {
  const provider = new CountingProvider()
  const arena = new Arena({ provider, blockSize: BLOCK, capacity: 2 * BLOCK })
  const first = arena.allocate(BLOCK - 2 * ALIGNMENT)
  const before = arena.stats()
  // Rows of 65 bytes take 128 each: the first lands in block 0's hole, the rest would need a second block
  // that cannot hold them all.
  t.throws(() => arena.allocateRows(ALIGNMENT + 1, 17, false), { code: 'PXP_ERR_CAPACITY' })
  t.same(arena.stats(), before)
  t.equal(provider.outstanding.size, 1)
  arena.free(first)
})

t.test('bad arguments', async (t) => {
  const provider = new HeapBlockProvider()
  t.throws(() => new Arena({ provider, blockSize: 0, capacity: BLOCK }), RangeError)
  t.throws(() => new Arena({ provider, blockSize: BLOCK, capacity: 0 }), RangeError)
  t.throws(() => new Arena({ provider, blockSize: BLOCK, capacity: 1.5 }), RangeError)
  const arena = new Arena({ provider, blockSize: BLOCK, capacity: BLOCK })
  for (const length of [0, -1, Number.NaN]) {
    t.throws(() => arena.tryAllocate(length), RangeError, `length ${length}`)
    t.equal(arena.stats().blocks, 0, 'no block was opened for an impossible request')
  }
  t.throws(() => arena.free({ block: 99, offset: 0, length: 64 }), RangeError)
  const a = arena.allocate(64)
  t.throws(() => arena.free({ block: a.block, offset: 64, length: 64 }), RangeError)
  arena.free(a)
  t.throws(() => arena.free(a), RangeError, 'double free')
  t.throws(() => arena.allocate(BLOCK + 1), { code: 'PXP_ERR_CAPACITY', message: /Not enough memory/ })
})
