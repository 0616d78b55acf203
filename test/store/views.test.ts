/**
 * Zero-copy views: descriptors a numpy user can apply to the parent's buffer, composition of views of
 * views, bounds, writes through views, and lifetimes (a parent's memory lives until every view is gone).
 */
import t, { type Test } from 'tap'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { ImageStore } from '../../server/store/image-store.js'
import { expectUnchanged, newStore, recordEvents, seededBytes } from '../helpers/store.js'

const W = 8
const H = 6
const C = 3

/** Rectangle of a C-order RGB image, computed the obvious way. */
function crop (img: Uint8Array, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * C)
  for (let r = 0; r < h; r++) out.set(img.subarray(((y + r) * W + x) * C, ((y + r) * W + x + w) * C), r * w * C)
  return out
}

/**
 * What numpy does with the descriptor: walk `shape` with `strides` (or C strides) from `offset` in the
 * base image's buffer. This is the contract a client in another language relies on.
 */
function viaArrayInterface (store: ImageStore, d: ImageDescriptor): Uint8Array {
  const base = store.describe(d.base)
  if (base.location.kind !== 'block') throw new Error('base is not a block image')
  const buffer = new Uint8Array(store.blockBuffer(base.location.block)!, base.location.byteOffset)
  const ai = d.__array_interface__
  const shape = ai.shape
  const strides = ai.strides ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1))
  const out = new Uint8Array(shape.reduce((a, b) => a * b, 1))
  let k = 0
  const walk = (dim: number, at: number): void => {
    if (dim === shape.length) {
      out[k++] = buffer[at]
      return
    }
    for (let i = 0; i < shape[dim]; i++) walk(dim + 1, at + i * strides[dim])
  }
  walk(0, ai.offset ?? 0)
  return out
}

function eq (t: Test, a: Uint8Array, b: Uint8Array, msg: string): void {
  t.ok(Buffer.from(a).equals(Buffer.from(b)), msg)
}

function setup (t: Test): { store: ImageStore, pixels: Uint8Array, parent: ImageDescriptor } {
  const store = newStore(t)
  const pixels = seededBytes(W * H * C, 21)
  const parent = store.create({ id: 'p', mode: 'RGB', width: W, height: H }, pixels)
  return { store, pixels, parent }
}

t.test('a view is the same memory, described by strides and an offset', async (t) => {
  const { store, pixels, parent } = setup(t)
  const v = store.createView('p', { id: 'v', x: 2, y: 1, width: 3, height: 4 })
  t.same(v.shape, [4, 3, 3])
  t.equal(v.mode, 'RGB')
  t.match(v, { base: 'p', layout: 'block', copied: false, readonly: false, generation: 0, byteLength: 36 })
  t.same(v.view, { parent: 'p', x: 2, y: 1, width: 3, height: 4 })
  t.same(v.__array_interface__.strides, [W * C, C, 1])
  t.equal(v.__array_interface__.offset, 1 * W * C + 2 * C)
  if (v.location.kind === 'block' && parent.location.kind === 'block') {
    t.equal(v.location.block, parent.location.block)
    t.equal(v.location.byteOffset, parent.location.byteOffset + 30)
  } else t.fail('block locations expected')
  eq(t, (await store.read('v')).bytes, crop(pixels, 2, 1, 3, 4), 'read gives the rectangle in C order')
  eq(t, viaArrayInterface(store, v), crop(pixels, 2, 1, 3, 4), 'the array interface points at the same rectangle')
  t.same(store.stats().views, 1)
  t.equal(store.stats().used, 192, 'a view allocates nothing')
})

t.test('contiguous views have null strides', async (t) => {
  const { store, pixels } = setup(t)
  const rows = store.createView('p', { id: 'rows', x: 0, y: 2, width: W, height: 3 })
  t.equal(rows.__array_interface__.strides, null)
  t.equal(rows.__array_interface__.offset, 2 * W * C)
  eq(t, (await store.read('rows')).bytes, crop(pixels, 0, 2, W, 3), 'full-width rows')
  const one = store.createView('p', { id: 'one', x: 3, y: 5, width: 4, height: 1 })
  t.equal(one.__array_interface__.strides, null, 'a single row is C-contiguous')
  eq(t, viaArrayInterface(store, one), crop(pixels, 3, 5, 4, 1), 'single row via the array interface')
  const origin = store.createView('p', { id: 'origin', x: 0, y: 0, width: 2, height: 2 })
  t.notOk('offset' in origin.__array_interface__, 'offset is omitted when zero')
})

t.test('a view of a view is a view of the root', async (t) => {
  const { store, pixels } = setup(t)
  store.createView('p', { id: 'v1', x: 2, y: 1, width: 5, height: 4 })
  const v2 = store.createView('v1', { id: 'v2', x: 1, y: 1, width: 2, height: 2 })
  t.same(v2.view, { parent: 'p', x: 3, y: 2, width: 2, height: 2 })
  t.equal(v2.base, 'p')
  t.equal(v2.__array_interface__.offset, 2 * W * C + 3 * C)
  eq(t, (await store.read('v2')).bytes, crop(pixels, 3, 2, 2, 2), 'read')
  eq(t, viaArrayInterface(store, v2), crop(pixels, 3, 2, 2, 2), 'array interface')
  // Inside the root but outside v1: refused against v1's own bounds.
  await expectUnchanged(t, store, 'PXP_ERR_BAD_REGION', () => store.createView('v1', { x: 4, y: 0, width: 2, height: 1 }), 'outside the parent view')
})

t.test('regions outside the parent are refused', async (t) => {
  const { store } = setup(t)
  const bad = [
    { x: 0, y: 0, width: W + 1, height: 1 },
    { x: W - 1, y: 0, width: 2, height: 1 },
    { x: 0, y: H - 1, width: 1, height: 2 },
    { x: -1, y: 0, width: 1, height: 1 },
    { x: 0, y: -1, width: 1, height: 1 },
    { x: 0, y: 0, width: 0, height: 1 },
    { x: 0, y: 0, width: 1, height: 0 },
    { x: 0.5, y: 0, width: 1, height: 1 },
    { x: Number.NaN, y: 0, width: 1, height: 1 },
    { x: 0, y: 0, width: Number.POSITIVE_INFINITY, height: 1 },
    { x: '1' as unknown as number, y: 0, width: 1, height: 1 },
  ]
  for (const region of bad) await expectUnchanged(t, store, 'PXP_ERR_BAD_REGION', () => store.createView('p', region), JSON.stringify(region))
  const lines = store.create({ id: 'lines', mode: 'L', width: 4, height: 4, layout: 'lines' })
  t.equal(lines.layout, 'lines')
  await expectUnchanged(t, store, 'PXP_ERR_VALIDATION', () => store.createView('lines', { x: 0, y: 0, width: 1, height: 1 }), 'view of a line-based image')
  store.create({ id: 'flat', shape: [16], typestr: '|u1' })
  await expectUnchanged(t, store, 'PXP_ERR_VALIDATION', () => store.createView('flat', { x: 0, y: 0, width: 1, height: 1 }), 'view of a 1-D image')
})

t.test('writes through a view reach the parent; all share one generation', async (t) => {
  const { store, pixels } = setup(t)
  store.createView('p', { id: 'v1', x: 2, y: 1, width: 3, height: 4 })
  store.createView('v1', { id: 'v2', x: 0, y: 0, width: 1, height: 1 })
  const { events } = recordEvents(store)
  const patch = seededBytes(36, 99)
  const d = await store.write('v1', patch)
  t.equal(d.generation, 1)
  t.same(events.sort(), ['updated:p:1', 'updated:v1:1', 'updated:v2:1'], 'the root and every view hear of the commit')
  const expected = pixels.slice()
  for (let r = 0; r < 4; r++) expected.set(patch.subarray(r * 9, r * 9 + 9), ((1 + r) * W + 2) * C)
  eq(t, (await store.read('p')).bytes, expected, 'the parent changed exactly in the rectangle')
  eq(t, (await store.read('v2')).bytes, patch.subarray(0, 3), 'a view of the view sees it')
  t.equal(store.generation('p'), 1)
  t.equal(store.generation('v2'), 1)
  const full = seededBytes(W * H * C, 5)
  await store.write('p', full)
  eq(t, (await store.read('v1')).bytes, crop(full, 2, 1, 3, 4), 'parent writes show in views')
  t.equal((await store.read('v1')).generation, 2)
  await expectUnchanged(t, store, 'PXP_ERR_BYTE_COUNT', () => store.write('v1', new Uint8Array(37)), 'view write of the parent size')
})

t.test('read-only propagates to views; a read-only view of a writable image', async (t) => {
  const store = newStore(t)
  store.create({ id: 'ro', mode: 'L', width: 4, height: 4, readonly: true })
  t.equal(store.createView('ro', { id: 'rov', x: 0, y: 0, width: 2, height: 2 }).readonly, true)
  await expectUnchanged(t, store, 'PXP_ERR_READONLY', () => store.write('rov', new Uint8Array(4)), 'view of read-only')
  store.create({ id: 'rw', mode: 'L', width: 4, height: 4 })
  t.equal(store.createView('rw', { id: 'rwv', x: 0, y: 0, width: 2, height: 2, readonly: true }).readonly, true)
  await expectUnchanged(t, store, 'PXP_ERR_READONLY', () => store.write('rwv', new Uint8Array(4)), 'read-only view')
  await store.write('rw', new Uint8Array(16).fill(1))
  t.equal(store.generation('rwv'), 1)
})

t.test('deleting a parent deletes its views; deleting a view keeps the parent', async (t) => {
  const { store, pixels } = setup(t)
  store.createView('p', { id: 'v1', x: 0, y: 0, width: 2, height: 2 })
  store.createView('v1', { id: 'v2', x: 0, y: 0, width: 1, height: 1 })
  store.createView('p', { id: 'v3', x: 1, y: 1, width: 2, height: 2 })
  store.delete('v3')
  t.same(store.ids().sort(), ['p', 'v1', 'v2'])
  eq(t, (await store.read('p')).bytes, pixels, 'parent intact')
  const { events } = recordEvents(store)
  store.delete('p')
  t.same(events.sort(), ['deleted:p', 'deleted:v1', 'deleted:v2'])
  t.same(store.list(), [])
  t.match(store.stats(), { used: 0, images: 0, views: 0, retired: 0 })
  t.equal(store.table.slotsInUse, 0, 'every slot is free again')
})

t.test('a parent\'s memory is freed only when every view is gone', async (t) => {
  const { store, pixels, parent } = setup(t)
  store.createView('p', { id: 'v1', x: 2, y: 1, width: 3, height: 4 })
  store.createView('p', { id: 'v2', x: 0, y: 0, width: 1, height: 1 })
  const leased = store.slotOf('v1')
  store.table.addLeases(leased, 1)
  store.delete('p')
  t.same(store.list(), [])
  t.equal(store.stats().retired, 2, 'the parent and its leased view wait; the idle view is gone')
  t.equal(store.stats().used, 192)
  const other = store.create({ id: 'other', mode: 'RGB', width: W, height: H })
  t.notSame(other.location, parent.location, 'the parent\'s memory is not reused while a view is leased')
  if (parent.location.kind !== 'block') throw new Error('block image expected')
  eq(t, new Uint8Array(store.blockBuffer(parent.location.block)!, parent.location.byteOffset, W * H * C), pixels, 'and still holds its pixels')
  store.table.addLeases(leased, -1)
  store.reclaimSlot(leased)
  t.equal(store.stats().retired, 0)
  t.equal(store.stats().used, 192, 'only the new image remains')
})
