/**
 * store.createFrom(): begin → fill → commit, or everything given back. Whatever fails — the reservation,
 * a fill that throws or rejects, a commit with the wrong byte count — the store is exactly as it was, and
 * an existing image of the same id keeps its bytes and its generation.
 */
import t from 'tap'
import { pxpError } from '../../protocol/errors.js'
import { expectUnchanged, newStore, seededBytes } from '../helpers/store.js'

const SPEC = { mode: 'RGB', width: 8, height: 4 }
const BYTES = 8 * 4 * 3

t.test('a fill that succeeds, synchronously or not, publishes the image with its bytes', async (t) => {
  const store = newStore(t)
  const sync = store.createFrom({ id: 'sync', ...SPEC }, (pending) => pending.write(seededBytes(BYTES, 1)))
  t.match(sync, { id: 'sync', generation: 0 })
  t.same((await store.read('sync')).bytes, seededBytes(BYTES, 1))
  const later = await store.createFrom({ id: 'later', ...SPEC }, async (pending) => {
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(store.has('later'), false, 'invisible while the fill runs')
    pending.write(seededBytes(BYTES, 2))
  })
  t.equal(later.id, 'later')
  t.same((await store.read('later')).bytes, seededBytes(BYTES, 2))
})

t.test('every failure leaves the store as it was', async (t) => {
  const store = newStore(t)
  store.create({ id: 'other', ...SPEC }, seededBytes(BYTES, 3))
  // An image first: its block stays open, so memory coming back is seen exactly.
  const boom = (): Error => pxpError('PXP_ERR_ABORTED', 'the client went away')
  await expectUnchanged(t, store, 'PXP_ERR_ABORTED', () => store.createFrom({ id: 'a', ...SPEC }, (p) => {
    p.write(seededBytes(10, 4))
    throw boom()
  }), 'a fill that throws')
  await expectUnchanged(t, store, 'PXP_ERR_ABORTED', () => store.createFrom({ id: 'a', ...SPEC }, async (p) => {
    p.write(seededBytes(10, 4))
    await new Promise((resolve) => setImmediate(resolve))
    throw boom()
  }), 'a fill that rejects later')
  await expectUnchanged(t, store, 'PXP_ERR_BYTE_COUNT', () => store.createFrom({ id: 'a', ...SPEC }, (p) => p.write(seededBytes(BYTES - 1, 4))), 'too few bytes at commit')
  await expectUnchanged(t, store, 'PXP_ERR_BYTE_COUNT', () => store.createFrom({ id: 'a', ...SPEC }, async (p) => p.write(seededBytes(BYTES + 1, 4))), 'too many bytes')
  await expectUnchanged(t, store, 'PXP_ERR_BAD_MODE', () => store.createFrom({ id: 'a', mode: 'nope', width: 1, height: 1 }, () => t.fail('no fill without a reservation')), 'a bad request')
  t.equal(store.create({ id: 'a', ...SPEC }).id, 'a', 'the id is free again')
})

t.test('an existing id is refused; that image keeps its bytes and generation', async (t) => {
  const store = newStore(t)
  store.create({ id: 'cam', ...SPEC }, seededBytes(BYTES, 5))
  await store.write('cam', seededBytes(BYTES, 6))
  t.equal(store.generation('cam'), 1)
  await expectUnchanged(t, store, 'PXP_ERR_ALREADY_EXISTS', () => store.createFrom({ id: 'cam', ...SPEC }, (p) => p.write(seededBytes(BYTES, 7))), 'createFrom over an existing id')
  t.equal(store.generation('cam'), 1, 'generation kept')
  t.same((await store.read('cam')).bytes, seededBytes(BYTES, 6), 'bytes kept')
})
