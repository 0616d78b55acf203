/**
 * ImageStore: round trips for every mode and dtype, zero-fill of reused memory, generations and events,
 * read-only images, limits, failures that leave the store as it was, pending uploads and leases.
 */
import t from 'tap'
import fc from 'fast-check'
import { typedArrayFor, type ImageDescriptor } from '../../protocol/descriptor.js'
import { DTYPES } from '../../protocol/dtypes.js'
import { MODES, modeShape } from '../../protocol/modes.js'
import { ALIGNMENT } from '../../server/memory/run-allocator.js'
import type { ImageStore } from '../../server/store/image-store.js'
import { expectUnchanged, newStore, recordEvents, seededBytes, storeState } from '../helpers/store.js'

/** The image's bytes read straight from its block, bypassing the store's copy path. */
function rawBytes (store: ImageStore, d: ImageDescriptor): Uint8Array {
  if (d.location.kind !== 'block') throw new Error('not a block image')
  return new Uint8Array(store.blockBuffer(d.location.block)!, d.location.byteOffset, d.byteLength)
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

t.test('every mode round-trips byte-exact with Pillow shapes', async (t) => {
  const store = newStore(t)
  let seed = 1
  for (const mode of MODES) {
    for (const [width, height] of [[1, 1], [7, 3], [33, 17]]) {
      const id = `m/${mode.name.replace(';', '_')}-${width}x${height}`
      const shape = modeShape(mode, width, height)
      const bytes = seededBytes(shape.reduce((a, b) => a * b, Number(mode.typestr.slice(2))), seed++)
      const d = store.create({ id, mode: mode.name, width, height }, bytes)
      t.same(d.shape, mode.channels === 1 ? [height, width] : [height, width, mode.channels], `${id} shape`)
      t.equal(d.typestr, mode.typestr)
      t.equal(d.mode, mode.name)
      t.equal(d.channels, mode.channels)
      t.equal(d.byteLength, bytes.byteLength)
      t.match(d, { generation: 0, readonly: false, layout: 'block', copied: false, base: id, view: null })
      t.same(d.__array_interface__, { version: 3, shape: d.shape, typestr: mode.typestr, descr: [['', mode.typestr]], strides: null, data: null })
      t.equal(d.location.kind === 'block' && d.location.byteOffset % ALIGNMENT, 0, 'aligned for every dtype')
      const copy = await store.read(id)
      t.ok(sameBytes(copy.bytes, bytes), `${id} read back byte-exact`)
      t.equal(copy.generation, 0)
      t.ok(sameBytes(rawBytes(store, d), bytes), `${id} lies in its block where the descriptor says`)
      t.same(store.describe(id), d)
    }
  }
  t.equal(store.size, MODES.length * 3)
})

t.test('every dtype round-trips, and native dtypes map as TypedArrays over the block', async (t) => {
  const store = newStore(t)
  const dims = fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 4 }))
  let n = 0
  for (const dtype of DTYPES) {
    for (const [h, w, c] of fc.sample(dims, { numRuns: 4, seed: dtype.code })) {
      const shape = c === 0 ? [h, w] : [h, w, c]
      const id = `d${n++}`
      const bytes = seededBytes(shape.reduce((a, b) => a * b, dtype.itemSize), n)
      const d = store.create({ id, shape, typestr: dtype.typestr }, bytes)
      t.equal(d.typestr, dtype.typestr)
      t.same(d.shape, shape)
      const copy = await store.read(id)
      t.ok(sameBytes(copy.bytes, bytes), `${dtype.typestr} ${JSON.stringify(shape)} byte-exact`)
      if (dtype.native) {
        const fromBlock = typedArrayFor(d, rawBytes(store, d))
        const fromUpload = typedArrayFor(d, bytes.slice())
        t.equal(fromBlock.constructor, dtype.array)
        t.same(Array.from(fromBlock as ArrayLike<number>, String), Array.from(fromUpload as ArrayLike<number>, String), `${dtype.typestr} values`)
      }
    }
  }
  // numpy spellings are normalised before they reach the descriptor.
  t.equal(store.create({ shape: [2, 2], typestr: 'u1' }).typestr, '|u1')
  t.equal(store.create({ shape: [2, 2], typestr: '=u2' }).typestr, '<u2')
})

t.test('memory reused by a new image is zero-filled', async (t) => {
  const store = newStore(t)
  const a = store.create({ id: 'a', mode: 'RGB', width: 32, height: 16 }, seededBytes(32 * 16 * 3, 7))
  store.delete('a')
  const b = store.create({ id: 'b', mode: 'RGB', width: 32, height: 16 })
  t.same(b.location, a.location, 'first fit reuses the same memory')
  t.ok((await store.read('b')).bytes.every((x) => x === 0), 'a plain create is zeros')
  store.delete('b')
  // An upload that wrote half its bytes, then aborted, must not leak them either.
  const p = store.beginCreate({ id: 'c', mode: 'RGB', width: 32, height: 16 })
  p.write(seededBytes(p.byteLength / 2, 8))
  p.abort()
  const d = store.create({ id: 'd', layout: 'lines', mode: 'RGB', width: 32, height: 16 })
  t.equal(d.layout, 'lines')
  t.ok((await store.read('d')).bytes.every((x) => x === 0), 'line-based create is zeros too')
})

t.test('generations bump on every commit and events name them', async (t) => {
  const store = newStore(t)
  const { events } = recordEvents(store)
  const d = store.create({ id: 'g', mode: 'L', width: 4, height: 4 })
  t.equal(d.generation, 0)
  const one = seededBytes(16, 1)
  t.equal((await store.write('g', one)).generation, 1)
  t.equal(store.generation('g'), 1)
  const two = await store.update('g', (pieces) => { pieces[0][0] = 42 })
  t.equal(two.generation, 2)
  const copy = await store.read('g')
  t.equal(copy.generation, 2)
  t.equal(copy.descriptor.generation, 2)
  t.equal(copy.bytes[0], 42)
  t.ok(sameBytes(copy.bytes.subarray(1), one.subarray(1)))
  store.delete('g')
  t.same(events, ['created:g', 'updated:g:1', 'updated:g:2', 'deleted:g'])
})

t.test('read into a caller buffer', async (t) => {
  const store = newStore(t)
  const bytes = seededBytes(24, 3)
  store.create({ id: 'r', mode: 'RGB', width: 4, height: 2 }, bytes)
  const target = new Uint8Array(30)
  const copy = await store.read('r', target)
  t.equal(copy.bytes, target)
  t.ok(sameBytes(target.subarray(0, 24), bytes))
  await t.rejects(store.read('r', new Uint8Array(23)), { code: 'PXP_ERR_BYTE_COUNT' })
})

t.test('read-only images refuse writes', async (t) => {
  const store = newStore(t)
  const bytes = seededBytes(16, 4)
  const d = store.create({ id: 'ro', mode: 'L', width: 4, height: 4, readonly: true }, bytes)
  t.equal(d.readonly, true)
  await expectUnchanged(t, store, 'PXP_ERR_READONLY', () => store.write('ro', new Uint8Array(16)), 'write')
  await expectUnchanged(t, store, 'PXP_ERR_READONLY', () => store.update('ro', (p) => p[0].fill(1)), 'update')
  t.ok(sameBytes((await store.read('ro')).bytes, bytes))
  t.equal(store.generation('ro'), 0)
})

t.test('limits', async (t) => {
  t.test('maxImages counts images, views and uploads in progress', async (t) => {
    const store = newStore(t, { maxImages: 3 })
    store.create({ id: 'a', mode: 'L', width: 4, height: 4 })
    store.createView('a', { id: 'v', x: 0, y: 0, width: 2, height: 2 })
    const pending = store.beginCreate({ id: 'p', mode: 'L', width: 4, height: 4 })
    await expectUnchanged(t, store, 'PXP_ERR_TOO_MANY_IMAGES', () => store.create({ id: 'b', mode: 'L', width: 4, height: 4 }), 'create')
    await expectUnchanged(t, store, 'PXP_ERR_TOO_MANY_IMAGES', () => store.createView('a', { id: 'w', x: 0, y: 0, width: 1, height: 1 }), 'view')
    pending.abort()
    store.create({ id: 'b', mode: 'L', width: 4, height: 4 })
    t.equal(store.stats().images, 2)
    t.equal(store.stats().views, 1)
    t.equal(store.stats().maxImages, 3)
  })
  t.test('maxImageBytes, capped by capacity', async (t) => {
    const store = newStore(t, { maxImageBytes: 1000 })
    await expectUnchanged(t, store, 'PXP_ERR_TOO_LARGE', () => store.create({ mode: 'RGB', width: 20, height: 20 }))
    store.create({ mode: 'RGB', width: 10, height: 10 })
    const small = newStore(t, { capacity: 4096, blockSize: 4096 })
    t.equal(small.limits.maxImageBytes, 4096)
    await expectUnchanged(t, small, 'PXP_ERR_TOO_LARGE', () => small.create({ mode: 'L', width: 64, height: 65 }), 'larger than capacity')
    small.create({ mode: 'L', width: 64, height: 64 })
  })
  t.test('maxDimension and malformed sizes', async (t) => {
    const store = newStore(t, { maxDimension: 100 })
    store.create({ mode: 'L', width: 100, height: 1 })
    for (const width of [101, 0, -1, 1.5, Number.NaN, '8' as unknown as number, null as unknown as number, 2 ** 53]) {
      await expectUnchanged(t, store, 'PXP_ERR_BAD_SHAPE', () => store.create({ mode: 'L', width, height: 4 }), `width ${String(width)}`)
    }
    await expectUnchanged(t, store, 'PXP_ERR_BAD_SHAPE', () => store.create({ shape: [4, 101], typestr: '|u1' }), 'shape')
    // The product overflows nothing: it is compared before anything is allocated.
    const big = newStore(t, { maxDimension: 65536 })
    await expectUnchanged(t, big, 'PXP_ERR_TOO_LARGE', () => big.create({ shape: [65536, 65536, 65536, 65536], typestr: '<f8' }), 'absurd shape')
  })
})

t.test('every failure leaves the store exactly as it was', async (t) => {
  const store = newStore(t, { capacity: 64 * 1024, blockSize: 16 * 1024 })
  store.create({ id: 'x', mode: 'RGB', width: 8, height: 8 }, seededBytes(192, 5))
  store.create({ id: 'ro', mode: 'L', width: 8, height: 8, readonly: true })
  const cases: Array<[string, string, () => unknown]> = [
    ['PXP_ERR_BAD_MODE', 'unknown mode', () => store.create({ mode: 'RGB;16', width: 2, height: 2 })],
    ['PXP_ERR_BAD_DTYPE', 'unknown typestr', () => store.create({ shape: [2, 2], typestr: '<c8' })],
    ['PXP_ERR_VALIDATION', 'mode and shape', () => store.create({ mode: 'L', width: 2, height: 2, shape: [2, 2] })],
    ['PXP_ERR_VALIDATION', 'nothing', () => store.create({})],
    ['PXP_ERR_BAD_SHAPE', '9-D shape', () => store.create({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], typestr: '|u1' })],
    ['PXP_ERR_BAD_ID', 'bad id', () => store.create({ id: '../etc', mode: 'L', width: 2, height: 2 })],
    ['PXP_ERR_ALREADY_EXISTS', 'duplicate id', () => store.create({ id: 'x', mode: 'L', width: 2, height: 2 })],
    ['PXP_ERR_BYTE_COUNT', 'short init', () => store.create({ id: 'y', mode: 'L', width: 2, height: 2 }, new Uint8Array(3))],
    ['PXP_ERR_BYTE_COUNT', 'long init', () => store.create({ id: 'y', mode: 'L', width: 2, height: 2 }, new Uint8Array(5))],
    ['PXP_ERR_CAPACITY', 'past capacity', () => store.create({ id: 'y', mode: 'L', width: 256, height: 256 })],
    ['PXP_ERR_CAPACITY', 'lines past capacity', () => store.create({ id: 'y', mode: 'L', width: 256, height: 256, layout: 'lines' })],
    ['PXP_ERR_NOT_FOUND', 'write missing', () => store.write('nope', new Uint8Array(1))],
    ['PXP_ERR_BYTE_COUNT', 'write short', () => store.write('x', new Uint8Array(191))],
    ['PXP_ERR_READONLY', 'write read-only', () => store.write('ro', new Uint8Array(64))],
    ['PXP_ERR_NOT_FOUND', 'read missing', () => store.read('nope')],
    ['PXP_ERR_NOT_FOUND', 'describe missing', () => store.describe('nope')],
    ['PXP_ERR_NOT_FOUND', 'delete missing', () => store.delete('nope')],
    ['PXP_ERR_NOT_FOUND', 'view of missing', () => store.createView('nope', { x: 0, y: 0, width: 1, height: 1 })],
    ['PXP_ERR_BAD_REGION', 'view outside', () => store.createView('x', { x: 4, y: 0, width: 5, height: 1 })],
    ['PXP_ERR_BAD_ID', 'view bad id', () => store.createView('x', { id: 'a//b', x: 0, y: 0, width: 1, height: 1 })],
    ['PXP_ERR_ALREADY_EXISTS', 'view duplicate id', () => store.createView('x', { id: 'ro', x: 0, y: 0, width: 1, height: 1 })],
  ]
  for (const [code, what, fn] of cases) await expectUnchanged(t, store, code, fn, what)
  t.ok(sameBytes((await store.read('x')).bytes, seededBytes(192, 5)), 'pixels untouched')
})

t.test('beginCreate: invisible until commit, abort returns everything', async (t) => {
  const store = newStore(t)
  // Open the first block up front: an empty shared block is kept for reuse, which is not a leak.
  store.delete(store.create({ mode: 'L', width: 1, height: 1 }).id)
  const before = storeState(store)
  const p = store.beginCreate({ id: 'up', mode: 'RGB', width: 10, height: 10 })
  t.equal(store.has('up'), false)
  t.same(store.list(), [])
  t.ok(store.stats().used >= 300, 'memory is reserved while the upload runs')
  await t.rejects(async () => store.create({ id: 'up', mode: 'L', width: 1, height: 1 }), { code: 'PXP_ERR_ALREADY_EXISTS' }, 'the id is taken')
  p.write(seededBytes(100, 1))
  p.abort()
  p.abort()
  t.same(storeState(store), before, 'abort gave back memory and slot')
  t.throws(() => p.write(new Uint8Array(1)), { code: 'PXP_ERR_CLOSED' })
  t.throws(() => p.commit(), { code: 'PXP_ERR_CLOSED' })
  t.equal(store.create({ id: 'up', mode: 'L', width: 1, height: 1 }).id, 'up', 'the id is free again')
})

t.test('beginCreate: chunked writes land byte-exact; overflow and short commits abort', async (t) => {
  const store = newStore(t)
  const bytes = seededBytes(37 * 11 * 3, 9)
  for (const layout of ['block', 'lines'] as const) {
    const p = store.beginCreate({ id: `chunks-${layout}`, mode: 'RGB', width: 37, height: 11, layout })
    for (let at = 0; at < bytes.length; at += 50) p.write(bytes.subarray(at, at + 50))
    t.equal(p.bytesWritten, bytes.length)
    const d = p.commit()
    t.equal(d.layout, layout)
    t.ok(sameBytes((await store.read(d.id)).bytes, bytes), `${layout}: byte-exact`)
    t.throws(() => p.commit(), { code: 'PXP_ERR_CLOSED' }, 'commit twice')
  }
  const before = storeState(store)
  const over = store.beginCreate({ id: 'over', mode: 'L', width: 4, height: 4 })
  over.write(new Uint8Array(10))
  t.throws(() => over.write(new Uint8Array(7)), { code: 'PXP_ERR_BYTE_COUNT' })
  t.same(storeState(store), before, 'overflow aborted the upload')
  const short = store.beginCreate({ id: 'short', mode: 'L', width: 4, height: 4 })
  short.write(new Uint8Array(15))
  t.throws(() => short.commit(), { code: 'PXP_ERR_BYTE_COUNT' })
  t.same(storeState(store), before, 'short commit aborted the upload')
  t.equal(store.beginCreate({ id: 'short', mode: 'L', width: 4, height: 4 }).commit().id, 'short', 'commit without bytes: a zero image')
})

t.test('a lease keeps a deleted image\'s memory until it drops and the slot is reclaimed', async (t) => {
  const store = newStore(t)
  const bytes = seededBytes(64 * 64, 11)
  const a = store.create({ id: 'a', mode: 'L', width: 64, height: 64 }, bytes)
  const slot = store.slotOf('a')
  const { events, stop } = recordEvents(store)
  t.equal(store.table.addLeases(slot, 1), 1)
  store.delete('a')
  t.same(events, ['deleted:a'], 'deleted from the catalog at once')
  stop()
  t.equal(store.has('a'), false)
  t.same(store.retiredSlots(), [slot])
  t.equal(store.stats().retired, 1)
  t.equal(store.stats().used, 64 * 64, 'memory still held')
  const b = store.create({ id: 'b', mode: 'L', width: 64, height: 64 })
  t.notSame(b.location, a.location, 'the leased memory is not handed out again')
  t.not(store.slotOf('b'), slot, 'nor is the slot')
  t.ok(sameBytes(rawBytes(store, a), bytes), 'a lease holder still sees the old pixels')
  store.reclaimSlot(slot)
  t.equal(store.stats().retired, 1, 'reclaim is a no-op while leases remain')
  t.equal(store.table.addLeases(slot, -1), 0)
  store.reclaimSlot(slot)
  t.same(store.retiredSlots(), [])
  t.equal(store.stats().used, 64 * 64, 'only b remains')
  const c = store.create({ id: 'c', mode: 'L', width: 64, height: 64 })
  t.same(c.location, a.location, 'the memory is reused now')
  t.equal(store.slotOf('c'), slot, 'and the slot')
  t.ok((await store.read('c')).bytes.every((x) => x === 0))
  store.reclaimSlot(12345)
  store.reclaimSlot(store.slotOf('c'))
  t.equal(store.has('c'), true, 'reclaiming a live slot does nothing')
})

t.test('a closed store refuses everything', async (t) => {
  const store = newStore(t)
  store.create({ id: 'a', mode: 'L', width: 2, height: 2 })
  store.close()
  store.close()
  t.throws(() => store.create({ mode: 'L', width: 2, height: 2 }), { code: 'PXP_ERR_CLOSED' })
  t.throws(() => store.describe('a'), { code: 'PXP_ERR_CLOSED' })
  await t.rejects(store.read('a'), { code: 'PXP_ERR_CLOSED' })
})
