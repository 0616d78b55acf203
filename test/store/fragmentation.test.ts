/**
 * Fragmentation and capacity at the store level: an image that fits in total but not in one run is stored
 * line by line (and read back byte-exact); an image that does not fit at all is refused with the store
 * unchanged; images larger than a block get a dedicated block.
 */
import t, { type Test } from 'tap'
import type { ImageStore } from '../../server/store/image-store.js'
import { expectUnchanged, newStore, seededBytes, storeState } from '../helpers/store.js'

const BLOCK = 4096
const SMALL = 1024

function eq (t: Test, a: Uint8Array, b: Uint8Array, msg: string): void {
  t.ok(Buffer.from(a).equals(Buffer.from(b)), msg)
}

/** Fill two blocks with eight 1 KiB images, then delete every other one: 4 KiB free, no run over 1 KiB. */
function fragmented (t: Test): { store: ImageStore, kept: Map<string, Uint8Array> } {
  const store = newStore(t, { blockSize: BLOCK, capacity: 2 * BLOCK })
  const kept = new Map<string, Uint8Array>()
  for (let i = 0; i < 8; i++) {
    const bytes = seededBytes(SMALL, i + 1)
    store.create({ id: `s${i}`, mode: 'L', width: 32, height: 32 }, bytes)
    if (i % 2 === 1) kept.set(`s${i}`, bytes)
  }
  t.equal(store.stats().free, 0, 'full')
  for (let i = 0; i < 8; i += 2) store.delete(`s${i}`)
  t.match(store.stats(), { used: 4 * SMALL, free: 4 * SMALL, largestFreeRun: SMALL })
  return { store, kept }
}

async function checkKept (t: Test, store: ImageStore, kept: Map<string, Uint8Array>): Promise<void> {
  for (const [id, bytes] of kept) eq(t, (await store.read(id)).bytes, bytes, `${id} untouched`)
}

t.test('an image that fits only in pieces is stored line by line', async (t) => {
  const { store, kept } = fragmented(t)
  const bytes = seededBytes(2 * SMALL, 77)
  const d = store.create({ id: 'big', mode: 'L', width: 64, height: 32 }, bytes)
  t.match(d, { layout: 'lines', copied: true, readonly: true })
  t.equal(d.__array_interface__.strides, null, 'handed out as a contiguous C-order copy')
  if (d.location.kind !== 'lines') throw new Error('lines location expected')
  t.equal(d.location.rowBytes, 64)
  t.equal(d.location.segments.reduce((n, s) => n + s.rows, 0), 32, 'every row placed')
  t.ok(d.location.segments.every((s) => s.rows * 64 <= SMALL), 'each segment fits a hole')
  for (const s of d.location.segments) {
    const seg = new Uint8Array(store.blockBuffer(s.block)!, s.byteOffset, s.rows * 64)
    const first = d.location.segments.slice(0, d.location.segments.indexOf(s)).reduce((n, x) => n + x.rows, 0)
    eq(t, seg, bytes.subarray(first * 64, (first + s.rows) * 64), `segment at ${s.block}:${s.byteOffset} holds its rows`)
  }
  eq(t, (await store.read('big')).bytes, bytes, 'read gives the exact bytes')
  await checkKept(t, store, kept)
  // Line-based images take writes like any other, and their copies follow.
  const next = seededBytes(2 * SMALL, 78)
  t.equal((await store.write('big', next)).generation, 1)
  eq(t, (await store.read('big')).bytes, next, 'after a write')
  await checkKept(t, store, kept)
  t.match(store.stats(), { used: 6 * SMALL, free: 2 * SMALL })
  store.delete('big')
  t.match(store.stats(), { used: 4 * SMALL, largestFreeRun: SMALL }, 'every row given back')
})

t.test('capacity exhausted: refused with the store unchanged', async (t) => {
  const { store, kept } = fragmented(t)
  store.create({ id: 'half', mode: 'L', width: 64, height: 32 })
  // 2 KiB free in two 1 KiB holes.
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ mode: 'L', width: 64, height: 33 }), 'more bytes than are free')
  // Fits in bytes (2015 <= 2048), but rows of 65 bytes pack 15 to a hole: the 31st row has nowhere to go.
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ mode: 'L', width: 65, height: 31 }), 'fits in bytes, not in rows')
  // Explicit line layout rounds every row up to ALIGNMENT: 17 rows of 65 bytes (1105) take 17 * 128 = 2176.
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ mode: 'L', width: 65, height: 17, layout: 'lines' }), 'per-row rounding')
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.beginCreate({ mode: 'L', width: 64, height: 33 }), 'beginCreate')
  await checkKept(t, store, kept)
  // Exactly what is left still fits, line by line.
  const last = seededBytes(2 * SMALL, 3)
  t.equal(store.create({ id: 'last', mode: 'L', width: 64, height: 32 }, last).layout, 'lines')
  eq(t, (await store.read('last')).bytes, last, 'the last 2 KiB')
  t.match(store.stats(), { free: 0, largestFreeRun: 0 })
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ mode: 'L', width: 1, height: 1 }), 'full')
})

t.test('explicit layout "lines": one run per row, like an array of row pointers', async (t) => {
  const store = newStore(t, { blockSize: BLOCK, capacity: 4 * BLOCK })
  const bytes = seededBytes(10 * 7 * 3, 12)
  const d = store.create({ id: 'rows', mode: 'RGB', width: 10, height: 7, layout: 'lines' }, bytes)
  t.match(d, { layout: 'lines', copied: true, readonly: true })
  if (d.location.kind !== 'lines') throw new Error('lines location expected')
  t.equal(d.location.segments.length, 7)
  t.ok(d.location.segments.every((s) => s.rows === 1 && s.byteOffset % 64 === 0))
  eq(t, (await store.read('rows')).bytes, bytes, 'read back')
  t.equal(store.stats().used, 7 * 64, 'each 30-byte row takes one aligned run')
})

t.test('an image larger than a block gets a dedicated block, released on delete', async (t) => {
  const store = newStore(t, { blockSize: BLOCK, capacity: 4 * BLOCK })
  store.create({ id: 'small', mode: 'L', width: 16, height: 16 })
  const bytes = seededBytes(3 * BLOCK, 31)
  const d = store.create({ id: 'huge', mode: 'L', width: 64, height: 3 * BLOCK / 64 }, bytes)
  t.equal(d.layout, 'block')
  t.match(store.stats(), { dedicatedBlocks: 1, blocks: 2 })
  eq(t, (await store.read('huge')).bytes, bytes, 'read back')
  if (d.location.kind !== 'block') throw new Error('block location expected')
  const block = d.location.block
  store.delete('huge')
  t.equal(store.blockBuffer(block), undefined, 'dedicated block released')
  t.match(store.stats(), { dedicatedBlocks: 0, blocks: 1 })
  // Empty shared blocks give way when a dedicated block needs their capacity.
  store.delete('small')
  const before = storeState(store)
  t.equal(before.stats.largestFreeRun, 4 * BLOCK)
  const all = store.create({ id: 'all', mode: 'L', width: 64, height: 4 * BLOCK / 64 })
  t.equal(all.layout, 'block')
  t.match(store.stats(), { blocks: 1, dedicatedBlocks: 1, free: 0 })
})
