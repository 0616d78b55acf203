/**
 * The descriptor helpers: numpy's array interface and typed views of received bytes.
 */
import t from 'tap'
import { arrayInterface, typedArrayFor } from '../../protocol/descriptor.js'
import { newStore } from '../helpers/store.js'

t.test('arrayInterface: version 3, descr, null data, offset only when non-zero', async (t) => {
  const shape = [2, 3]
  const strides = [12, 4]
  const ai = arrayInterface(shape, '<f4', strides, 0)
  t.same(ai, { version: 3, shape: [2, 3], typestr: '<f4', descr: [['', '<f4']], strides: [12, 4], data: null })
  t.notOk('offset' in ai)
  shape[0] = 99
  strides[0] = 99
  t.same(ai.shape, [2, 3], 'shape copied, not aliased')
  t.same(ai.strides, [12, 4], 'strides copied')
  t.equal(arrayInterface([1], '|u1', null, 64).offset, 64)
  t.equal(arrayInterface([1], '|u1', null, 0).strides, null)
})

t.test('typedArrayFor: a view when aligned, a copy when not, raw bytes for big-endian', async (t) => {
  const backing = new Uint8Array(17)
  const f = new Float32Array([1.5, -2, 3.25, 1e6])
  backing.set(new Uint8Array(f.buffer), 0)
  const aligned = typedArrayFor({ typestr: '<f4' }, backing.subarray(0, 16))
  t.type(aligned, Float32Array)
  t.equal(aligned.buffer, backing.buffer, 'no copy')
  t.same(Array.from(aligned as Float32Array), [1.5, -2, 3.25, 1e6])
  backing.copyWithin(1, 0, 16)
  const unaligned = typedArrayFor({ typestr: 'f4' }, backing.subarray(1, 17))
  t.not(unaligned.buffer, backing.buffer, 'copied so the TypedArray is legal')
  t.same(Array.from(unaligned as Float32Array), [1.5, -2, 3.25, 1e6])
  const big = typedArrayFor({ typestr: '>u2' }, new Uint8Array([1, 2, 3, 4]))
  t.type(big, Uint8Array, 'big-endian has no host view')
  t.throws(() => typedArrayFor({ typestr: '<u4' }, new Uint8Array(6)), { code: 'PXP_ERR_BYTE_COUNT' })
  t.throws(() => typedArrayFor({ typestr: '<c8' }, new Uint8Array(8)), { code: 'PXP_ERR_BAD_DTYPE' })
  const u64 = typedArrayFor({ typestr: '<u8' }, new Uint8Array(16).fill(255))
  t.type(u64, BigUint64Array)
  t.equal((u64 as BigUint64Array)[1], 2n ** 64n - 1n)
})

t.test('a store descriptor survives JSON and structured clone unchanged', async (t) => {
  const store = newStore(t)
  store.create({ id: 'p', mode: 'RGB', width: 6, height: 4 })
  const views = [store.describe('p'), store.createView('p', { id: 'v', x: 1, y: 1, width: 2, height: 2 }), store.create({ id: 'l', mode: 'L', width: 3, height: 3, layout: 'lines' })]
  for (const d of views) {
    t.same(JSON.parse(JSON.stringify(d)), d, `${d.id} JSON`)
    t.same(structuredClone(d), d, `${d.id} structured clone`)
    t.equal(d.__array_interface__.data, null)
    t.same(d.__array_interface__.shape, d.shape)
    t.equal(d.__array_interface__.typestr, d.typestr)
  }
})
