/**
 * The Evictor on its own (server/store/evictor.ts), over a real arena and image table: the order images go
 * in (least recently used first, a use moves one to the back), only as many as the new one needs, and never
 * one that is held, guarded, kept, or not the caller's to evict. The store-level behaviour (events, holds
 * taken through the shared control words) is test/store/eviction.test.ts.
 */
import t, { type Test } from 'tap'
import { SLOT } from '../../protocol/layout.js'
import { Arena } from '../../server/memory/arena.js'
import { HeapBlockProvider } from '../../server/memory/block-provider.js'
import type { EvictionReason } from '../../server/store/eviction.js'
import { Evictor } from '../../server/store/evictor.js'
import { ImageTable } from '../../server/store/image-table.js'
import type { ImageRecord } from '../../server/store/records.js'

const KiB = 1024
/** Room for four images of one 64 KiB block each. */
const IMAGE_BYTES = 64 * KiB

interface Bench {
  evictor: Evictor
  arena: Arena
  table: ImageTable
  records: Map<string, ImageRecord>
  evicted: Array<[string, EvictionReason]>
  /** Images a thread holds (in the image table's lease word, as a worker would). */
  hold: (id: string) => void
  /** A record of one image's memory: `allocation` when withRoom made it, else allocated now. */
  add: (id: string, allocation?: unknown) => ImageRecord
}

/** An evictor over a real arena and table; `evict` frees what the store would. */
function bench (t: Test, policy: 'lru' | 'none' = 'lru', maxImages = 16): Bench {
  const arena = new Arena({ provider: new HeapBlockProvider(), blockSize: IMAGE_BYTES, capacity: 4 * IMAGE_BYTES })
  t.teardown(() => arena.close())
  const table = new ImageTable(maxImages, {})
  const records = new Map<string, ImageRecord>()
  const evicted: Array<[string, EvictionReason]> = []
  const evictor = new Evictor(policy, {
    arena,
    table,
    promisedSlots: () => 0,
    records: () => records.values(),
    isHeld: (record) => table.word(record.slot, SLOT.LEASES) !== 0,
    evict: (record, reason) => {
      evicted.push([record.id, reason])
      records.delete(record.id)
      table.free(record.slot)
      if (record.allocation !== null) arena.free(record.allocation)
    },
  })
  const add = (id: string, made?: unknown): ImageRecord => {
    const allocation = made ?? arena.allocate(IMAGE_BYTES)
    const slot = table.allocSlot()
    // Only what the evictor reads of a record is real here: its memory, slot, views and use.
    const record = { id, slot, allocation, runs: null, parent: null, children: new Set(), lastUsed: evictor.tick() } as unknown as ImageRecord
    records.set(id, record)
    return record
  }
  return { evictor, arena, table, records, evicted, add, hold: (id) => table.addLeases(records.get(id)!.slot, 1) }
}

const placeOne = (arena: Arena): unknown => arena.allocate(IMAGE_BYTES)

t.test('least recently used first, only as many as the new image needs; a use moves an image to the back', async (t) => {
  const b = bench(t)
  for (const id of ['a', 'b', 'c', 'd']) b.add(id)
  b.evictor.touch(b.records.get('a')!)
  const e = b.evictor.withRoom('e', [], undefined, placeOne)
  t.ok(e, 'the new image got its memory')
  t.same(b.evicted, [['b', { code: 'PXP_ERR_CAPACITY', for: 'e' }]], 'b is the oldest once a was used')
  b.add('e', e)
  b.evictor.touch(b.records.get('c')!)
  b.add('f', b.evictor.withRoom('f', [], undefined, placeOne))
  t.same(b.evicted.map(([id]) => id), ['b', 'd'], 'then d: c was used since')
  t.same([...b.records.keys()].sort(), ['a', 'c', 'e', 'f'])
})

t.test('held, guarded, kept and not-mine images are passed over; a held one counts as used', async (t) => {
  const b = bench(t)
  for (const id of ['a', 'b', 'c', 'd']) b.add(id)
  b.hold('a')
  const unguard = b.evictor.addGuard((id) => id === 'b')
  const before = b.records.get('a')!.lastUsed
  b.evictor.withRoom('x', [b.records.get('c')!], (id) => id !== 'e', placeOne)
  t.same(b.evicted.map(([id]) => id), ['d'], 'a is held, b guarded, c kept: d goes')
  t.ok(b.records.get('a')!.lastUsed > before, 'found held: moved to the back')

  // Nothing else may go: the same error, and nothing evicted.
  await t.rejects(async () => b.evictor.withRoom('y', [b.records.get('c')!], undefined, (arena) => arena.allocate(2 * IMAGE_BYTES)), { code: 'PXP_ERR_CAPACITY' })
  t.same(b.evicted.map(([id]) => id), ['d'], 'no plan works: nothing evicted')

  unguard()
  b.evictor.withRoom('z', [], undefined, null)
  t.same(b.evicted.map(([id]) => id), ['d'], 'a slot only, and slots are free: nothing evicted')
  b.evictor.withRoom('z', [], undefined, placeOne)
  t.same(b.evicted.map(([id]) => id), ['d', 'c'], 'c goes: a held and b guarded were found in use, which counts as a use')
})

t.test('too many images: the oldest idle one goes for a slot', async (t) => {
  const b = bench(t, 'lru', 2)
  b.add('a')
  b.add('b')
  b.evictor.touch(b.records.get('a')!)
  b.evictor.withRoom('c', [], undefined, null)
  t.same(b.evicted, [['b', { code: 'PXP_ERR_TOO_MANY_IMAGES', for: 'c' }]])
})

t.test('policy none refuses and evicts nothing; an unknown policy is named', async (t) => {
  const b = bench(t, 'none')
  for (const id of ['a', 'b', 'c', 'd']) b.add(id)
  t.throws(() => b.evictor.withRoom('e', [], undefined, placeOne), { code: 'PXP_ERR_CAPACITY' })
  t.same(b.evicted, [])
  t.throws(() => new Evictor('fifo' as 'lru', { arena: b.arena, table: b.table, promisedSlots: () => 0, records: () => [], isHeld: () => false, evict: () => {} }),
    { code: 'PXP_ERR_VALIDATION', message: /option evict must be one of none, lru, got "fifo"/ })
})
