/**
 * The image table: slot allocation and reuse, in-place growth, the words publish/retire/free write, and
 * the round trip that matters to worker threads: a descriptor rebuilt from the slot words alone equals
 * the store's own.
 */
import t from 'tap'
import { HEADER, HEADER_WORDS, LAYOUT_VERSION, MAX_ID_BYTES, SLOT, SLOT_STATE, SLOT_WORDS, fnv1a, slotBase, tableBytes } from '../../protocol/layout.js'
import { descriptorFromSlot, findSlot, isLive, slotId } from '../../protocol/slot-reader.js'
import { ImageTable, type SlotFields } from '../../server/store/image-table.js'
import { newStore, seededBytes } from '../helpers/store.js'
import { settle } from '../helpers/atomics.js'

const fields = (id: string, over: Partial<SlotFields> = {}): SlotFields => ({
  id,
  flags: 0,
  dtype: 1,
  mode: 2,
  shape: [4, 8],
  strides: [8, 1],
  block: 0,
  byteOffset: 128,
  byteLength: 32,
  parent: -1,
  frames: 1,
  frameStride: 64,
  ...over,
})

t.test('header and bad sizes', async (t) => {
  for (const n of [0, -1, 1.5, Number.NaN]) t.throws(() => new ImageTable(n), RangeError)
  const table = new ImageTable(10)
  t.equal(table.words[HEADER.LAYOUT_VERSION], LAYOUT_VERSION)
  t.equal(table.words[HEADER.SLOT_WORDS], SLOT_WORDS)
  t.equal(table.words[HEADER.SLOT_CAPACITY], 10)
  t.equal(table.mappedSlots, 10, 'a small table is mapped whole')
  t.equal(table.buffer.byteLength, tableBytes(10))
})

t.test('slots: lowest free first, growth in place, a hard maximum', async (t) => {
  const table = new ImageTable(200)
  t.equal(table.mappedSlots, 64)
  const words = table.words
  const buffer = table.buffer
  const got = Array.from({ length: 65 }, () => table.allocSlot())
  t.same(got, [...Array(65).keys()])
  t.equal(table.buffer, buffer, 'the same buffer, grown in place')
  t.equal(table.mappedSlots, 128)
  t.equal(words.length, HEADER_WORDS + 128 * SLOT_WORDS, 'existing Int32Array views see the growth')
  t.equal(Atomics.load(words, HEADER.HIGH_WATER), 65)
  t.equal(table.slotsInUse, 65)
  table.unreserve(40)
  table.unreserve(3)
  table.unreserve(17)
  t.equal(table.slotsInUse, 62)
  t.same([table.allocSlot(), table.allocSlot(), table.allocSlot(), table.allocSlot()], [3, 17, 40, 65])
  while (table.slotsInUse < 200) table.allocSlot()
  t.equal(table.mappedSlots, 200, 'growth stops at the maximum')
  t.throws(() => table.allocSlot(), { code: 'PXP_ERR_TOO_MANY_IMAGES' })
})

t.test('publish, retire, free: the words and their order', async (t) => {
  const table = new ImageTable(8)
  const w = table.words
  const slot = table.allocSlot()
  const base = slotBase(slot)
  const catalog = Atomics.waitAsync(w, HEADER.CATALOG_SEQ, 0, 5000)
  const id = 'cam/left.raw'
  table.publish(slot, fields(id, { shape: [4, 8, 3], strides: [24, 3, 1], flags: 5 }))
  t.equal(await settle(catalog), 'ok', 'catalog waiters are woken')
  t.equal(w[base + SLOT.STATE], SLOT_STATE.LIVE)
  t.equal(w[base + SLOT.EPOCH], 1)
  t.equal(w[base + SLOT.NDIM], 3)
  t.same(Array.from(w.subarray(base + SLOT.SHAPE, base + SLOT.SHAPE + 4)), [4, 8, 3, 0])
  t.same(Array.from(w.subarray(base + SLOT.STRIDES, base + SLOT.STRIDES + 4)), [24, 3, 1, 0])
  t.equal(w[base + SLOT.FLAGS], 5)
  t.equal(w[base + SLOT.ID_HASH], fnv1a(new TextEncoder().encode(id)))
  t.equal(slotId(w, slot), id)
  t.same(findSlot(w, id), { slot, epoch: 1 })
  // Simulate use, then retire: generation waiters learn that no new generation will come.
  w[base + SLOT.SEQ] = 6
  w[base + SLOT.GENERATION] = 3
  table.addLeases(slot, 2)
  const gen = Atomics.waitAsync(w, base + SLOT.GENERATION, 3, 5000)
  table.retire(slot)
  t.equal(await settle(gen), 'ok', 'generation waiters are woken on retire')
  t.equal(w[base + SLOT.STATE], SLOT_STATE.DELETED)
  t.equal(findSlot(w, id), null, 'a retired image cannot be found')
  t.equal(table.leases(slot), 2)
  t.equal(table.addLeases(slot, -2), 0)
  table.free(slot)
  t.equal(w[base + SLOT.STATE], SLOT_STATE.FREE)
  t.equal(table.allocSlot(), slot, 'reused')
  // A racing worker's transient lease survives republishing; the rest of the record starts clean.
  table.addLeases(slot, 1)
  table.publish(slot, fields('other'))
  t.equal(w[base + SLOT.EPOCH], 2, 'a new epoch tells stale lookups apart')
  t.notOk(isLive(w, { slot, epoch: 1 }))
  t.ok(isLive(w, { slot, epoch: 2 }))
  t.equal(table.leases(slot), 1)
  t.equal(w[base + SLOT.SEQ], 0)
  t.equal(w[base + SLOT.GENERATION], 0)
  t.equal(slotId(w, slot), 'other', 'no bytes of the longer old id remain')
})

t.test('ids up to MAX_ID_BYTES round-trip; longer ones are refused before anything is written', async (t) => {
  const table = new ImageTable(4)
  const slot = table.allocSlot()
  const longest = 'x'.repeat(MAX_ID_BYTES)
  table.publish(slot, fields(longest))
  t.equal(slotId(table.words, slot), longest)
  t.same(findSlot(table.words, longest), { slot, epoch: 1 })
  t.equal(findSlot(table.words, longest + 'x'), null)
  const other = table.allocSlot()
  const before = Array.from(table.words.subarray(slotBase(other), slotBase(other) + SLOT_WORDS))
  t.throws(() => table.publish(other, fields('é'.repeat(65))), RangeError)
  t.same(Array.from(table.words.subarray(slotBase(other), slotBase(other) + SLOT_WORDS)), before, 'the slot is untouched')
})

t.test('descriptors rebuilt from slot words equal the store\'s own', async (t) => {
  const store = newStore(t)
  store.create({ id: 'rgb', mode: 'RGB', width: 9, height: 5 }, seededBytes(135, 1))
  store.create({ id: 'f', mode: 'F', width: 3, height: 2 })
  store.create({ id: 'raw', shape: [2, 3, 2, 2], typestr: '>i2' })
  store.create({ id: 'flat', shape: [100], typestr: '<f8' })
  store.create({ id: 'ro', mode: 'I;16', width: 4, height: 4, readonly: true })
  store.createView('rgb', { id: 'v', x: 2, y: 1, width: 4, height: 3 })
  store.createView('v', { id: 'vv', x: 1, y: 1, width: 2, height: 2 })
  store.createView('rgb', { id: 'rows', x: 0, y: 3, width: 9, height: 2 })
  store.create({ id: 'lines', mode: 'LA', width: 5, height: 3, layout: 'lines' })
  await store.write('rgb', seededBytes(135, 2))
  // Frame-buffered: after a write the published buffer is another one, and views follow it.
  store.create({ id: 'fb', mode: 'L', width: 8, height: 8, frames: 3 })
  store.createView('fb', { id: 'fbv', x: 1, y: 2, width: 3, height: 3 })
  await store.write('fb', seededBytes(64, 3))
  const fbv = store.describe('fbv').location
  t.equal(fbv.kind === 'block' ? fbv.frame : -1, 1, 'the view follows the published buffer')
  for (const d of store.list()) {
    const slot = store.slotOf(d.id)
    t.same(findSlot(store.table.words, d.id), { slot, epoch: store.table.word(slot, SLOT.EPOCH) }, `${d.id}: found`)
    const fromWords = descriptorFromSlot(store.table.words, slot)
    if (d.location.kind === 'lines') {
      // Row segments are not in shared memory; everything else is.
      t.same({ ...fromWords, location: null }, { ...d, location: null }, `${d.id}: all but the row table`)
      t.equal(fromWords.location.kind, 'lines')
    } else {
      t.same(fromWords, d, `${d.id}: identical`)
    }
  }
})
