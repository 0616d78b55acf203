/**
 * The allocators, model-based: random sequences of allocations and frees against RunAllocator and Arena,
 * checked after every step against a model of what is live. No two live allocations overlap, every one is
 * aligned and inside its block, free + used = total, a failed allocation changes nothing, and once
 * everything is freed the memory is one whole run again (coalescing).
 */
import fc from 'fast-check'
import t from 'tap'
import { Arena, type Allocation } from '../../server/memory/arena.js'
import { HeapBlockProvider } from '../../server/memory/block-provider.js'
import { ALIGNMENT, alignUp, RunAllocator } from '../../server/memory/run-allocator.js'
import { fuzzSettings, registryErrorOf } from '../helpers/fuzz.js'

type Op = { kind: 'alloc', length: number } | { kind: 'free', pick: number } | { kind: 'rows', rowBytes: number, rows: number, perRow: boolean }

function ops (maxLength: number, withRows: boolean) {
  const alloc = fc.oneof(
    fc.integer({ min: 1, max: 200 }),
    fc.integer({ min: 1, max: maxLength }),
    fc.constantFrom(ALIGNMENT, ALIGNMENT + 1, maxLength),
  ).map((length): Op => ({ kind: 'alloc', length }))
  const free = fc.nat().map((pick): Op => ({ kind: 'free', pick }))
  const rows = fc.record({ rowBytes: fc.integer({ min: 1, max: 300 }), rows: fc.integer({ min: 1, max: 40 }), perRow: fc.boolean() })
    .map((r): Op => ({ kind: 'rows', ...r }))
  const op = withRows ? fc.oneof({ weight: 3, arbitrary: alloc }, { weight: 3, arbitrary: free }, { weight: 1, arbitrary: rows }) : fc.oneof(alloc, free)
  return fc.array(op, { maxLength: 120 })
}

// ---- RunAllocator -----------------------------------------------------------------------------------

function checkRunAllocator (a: RunAllocator, live: Map<number, number>): void {
  const runs = a.freeRuns()
  let free = 0
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i]
    if (r.length <= 0 || r.offset % ALIGNMENT !== 0 || r.length % ALIGNMENT !== 0) throw new Error(`bad free run ${JSON.stringify(r)}`)
    if (i > 0 && runs[i - 1].offset + runs[i - 1].length >= r.offset) throw new Error('free runs unsorted, overlapping or not coalesced')
    free += r.length
  }
  // Live allocations and free runs tile the block exactly: nothing overlaps, nothing is lost.
  const pieces = [...[...live].map(([offset, length]) => ({ offset, length })), ...runs].sort((x, y) => x.offset - y.offset)
  let at = 0
  for (const p of pieces) {
    if (p.offset !== at) throw new Error(p.offset < at ? `overlap at ${p.offset}` : `lost bytes ${at}-${p.offset}`)
    at += p.length
  }
  if (at !== a.size) throw new Error(`pieces end at ${at}, block is ${a.size}`)
  const used = [...live.values()].reduce((s, n) => s + n, 0)
  if (a.used !== used || a.freeBytes !== free || a.used + a.freeBytes !== a.size) throw new Error('used/free accounting')
  if (a.allocationCount !== live.size) throw new Error('allocation count')
  if (a.largestFreeRun !== Math.max(0, ...runs.map((r) => r.length))) throw new Error('largestFreeRun')
}

t.test('RunAllocator against a model', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const sizes = fc.integer({ min: 1, max: 64 }).map((n) => n * ALIGNMENT)
  fc.assert(fc.property(sizes, ops(2048, false), (size, steps) => {
    const a = new RunAllocator(size)
    const live = new Map<number, number>()
    for (const step of steps) {
      if (step.kind === 'alloc') {
        const need = alignUp(step.length)
        const before = JSON.stringify(a.freeRuns())
        const firstFit = a.freeRuns().find((r) => r.length >= need)
        const offset = a.allocate(step.length)
        if (offset < 0) {
          if (firstFit !== undefined) throw new Error(`refused ${need} with a run of ${firstFit.length} free`)
          if (JSON.stringify(a.freeRuns()) !== before) throw new Error('a failed allocation changed the free list')
        } else {
          if (offset !== firstFit?.offset) throw new Error(`not first fit: got ${offset}, first fit ${firstFit?.offset}`)
          if (a.lengthOf(offset) !== need) throw new Error('rounded length')
          live.set(offset, need)
        }
      } else if (step.kind === 'free') {
        if (live.size === 0) {
          if (thrownKind(() => a.free(step.pick * ALIGNMENT)) !== 'RangeError') throw new Error('freed what was not allocated')
          continue
        }
        const offset = [...live.keys()][step.pick % live.size]
        a.free(offset)
        live.delete(offset)
        if (thrownKind(() => a.free(offset)) !== 'RangeError') throw new Error('double free accepted')
      }
      checkRunAllocator(a, live)
    }
    for (const offset of [...live.keys()]) a.free(offset)
    live.clear()
    checkRunAllocator(a, live)
    const whole = a.freeRuns()
    if (whole.length !== 1 || whole[0].offset !== 0 || whole[0].length !== size || !a.isEmpty) throw new Error('not one whole run after freeing all')
  }), { seed, numRuns: runs(1000) })
  t.pass('model holds')
})

/** 'RangeError' when fn throws one, 'none' when it does not throw (anything else: named). */
function thrownKind (fn: () => void): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof RangeError ? 'RangeError' : `other: ${String(err)}`
  }
}

// ---- Arena ------------------------------------------------------------------------------------------

function checkArena (arena: Arena, live: Allocation[]): void {
  const stats = arena.stats()
  const used = live.reduce((s, a) => s + a.length, 0)
  if (stats.used !== used || arena.used !== used) throw new Error(`used ${stats.used}, model ${used}`)
  if (stats.free + stats.used !== stats.capacity) throw new Error('free + used != capacity')
  if (stats.reserved > stats.capacity || stats.used > stats.reserved) throw new Error('reserved outside [used, capacity]')
  const blocks = arena.allBlocks()
  if (blocks.reduce((s, b) => s + b.allocator.size, 0) !== stats.reserved) throw new Error('reserved != sum of blocks')
  if (blocks.reduce((s, b) => s + b.allocator.used, 0) !== used) throw new Error('blocks used != model')
  for (const b of blocks) {
    if (b.memory.buffer.byteLength < b.allocator.size) throw new Error('block memory smaller than its allocator')
    if (b.dedicated && b.allocator.isEmpty) throw new Error('empty dedicated block kept')
  }
  const byBlock = new Map<number, Allocation[]>()
  for (const a of live) {
    const block = arena.block(a.block)
    if (block === undefined) throw new Error(`allocation in missing block ${a.block}`)
    if (a.offset % ALIGNMENT !== 0 || a.length % ALIGNMENT !== 0) throw new Error('unaligned')
    if (a.offset + a.length > block.allocator.size) throw new Error('past the end of its block')
    if (block.allocator.lengthOf(a.offset) !== a.length) throw new Error('allocator disagrees with the model')
    byBlock.set(a.block, [...byBlock.get(a.block) ?? [], a])
  }
  for (const list of byBlock.values()) {
    list.sort((x, y) => x.offset - y.offset)
    for (let i = 1; i < list.length; i++) if (list[i - 1].offset + list[i - 1].length > list[i].offset) throw new Error('overlap')
  }
}

t.test('Arena against a model: capacity, dedicated blocks, row runs, all or nothing', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const config = fc.record({ blocks: fc.integer({ min: 1, max: 16 }), capacityBlocks: fc.integer({ min: 1, max: 6 }), extra: fc.nat(ALIGNMENT * 8) })
  fc.assert(fc.property(config, ops(4096, true), ({ blocks, capacityBlocks, extra }, steps) => {
    const blockSize = blocks * ALIGNMENT * 4
    const arena = new Arena({ provider: new HeapBlockProvider(), blockSize, capacity: capacityBlocks * blockSize + extra })
    const live: Allocation[] = []
    const observable = (): string => { const s = arena.stats(); return JSON.stringify([s.used, s.free, s.largestFreeRun]) }
    for (const step of steps) {
      const before = observable()
      if (step.kind === 'alloc') {
        const need = alignUp(step.length)
        const largest = arena.stats().largestFreeRun
        const a = arena.tryAllocate(step.length)
        if (a === null) {
          if (need <= largest) throw new Error(`refused ${need} though largestFreeRun is ${largest}`)
          if (observable() !== before) throw new Error('a failed allocation changed the arena')
          const err = registryErrorOf(() => arena.allocate(step.length), ['PXP_ERR_CAPACITY'])
          if (err === undefined) throw new Error('allocate succeeded where tryAllocate failed')
        } else {
          if (a.length !== need) throw new Error('length not rounded')
          live.push(a)
        }
      } else if (step.kind === 'rows') {
        let got: ReturnType<Arena['allocateRows']> | undefined
        const err = registryErrorOf(() => { got = arena.allocateRows(step.rowBytes, step.rows, step.perRow) }, ['PXP_ERR_CAPACITY'])
        if (err !== undefined) {
          if (observable() !== before) throw new Error('a failed row allocation changed the arena')
        } else {
          const rows = got!.reduce((s, r) => s + r.rows, 0)
          if (rows !== step.rows) throw new Error(`${rows} rows placed, ${step.rows} asked`)
          for (const r of got!) if (r.length < r.rows * step.rowBytes) throw new Error('run too short for its rows')
          if (step.perRow && got!.length !== step.rows) throw new Error('perRow: not one run per row')
          live.push(...got!)
        }
      } else if (live.length > 0) {
        const [a] = live.splice(step.pick % live.length, 1)
        arena.free(a)
      }
      checkArena(arena, live)
    }
    for (const a of live.splice(0)) arena.free(a)
    checkArena(arena, live)
    const s = arena.stats()
    if (s.used !== 0 || s.dedicatedBlocks !== 0 || s.largestFreeRun !== s.capacity) throw new Error(`not back to empty: ${JSON.stringify(s)}`)
    for (const b of arena.allBlocks()) {
      const r = b.allocator.freeRuns()
      if (r.length !== 1 || r[0].length !== b.allocator.size) throw new Error('a block is not one whole run')
    }
    arena.close()
  }), { seed, numRuns: runs(1000) })
  t.pass('model holds')
})
