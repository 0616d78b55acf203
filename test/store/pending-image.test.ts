/**
 * PendingImage (server/store/pending-image.ts): an image being created, invisible until commit. An abort —
 * called, forced by too many bytes or too few at commit, or a commit that fails — leaves nothing behind:
 * no id, no slot, no memory, no event. Through the store for every layout, and on its own for the order of
 * its callbacks.
 */
import t from 'tap'
import { pxpError } from '../../protocol/errors.js'
import { specFromRequest, DEFAULT_SPEC_LIMITS } from '../../protocol/spec.js'
import { PendingImage } from '../../server/store/pending-image.js'
import { newStore, recordEvents, seededBytes, storeState } from '../helpers/store.js'

t.test('abort leaves nothing, for every layout, after any number of bytes', async (t) => {
  const store = newStore(t)
  // Open the first block up front: an empty shared block is kept for reuse, which is not a leak.
  store.delete(store.create({ mode: 'L', width: 1, height: 1 }).id)
  const before = storeState(store)
  const events = recordEvents(store)
  t.teardown(events.stop)
  const cases = [
    { id: 'block', mode: 'RGB', width: 20, height: 10 },
    { id: 'lines', mode: 'RGB', width: 20, height: 10, layout: 'lines' as const },
    { id: 'frames', mode: 'RGB', width: 20, height: 10, frames: 3 },
  ]
  for (const request of cases) {
    for (const written of [0, 1, 599]) {
      const pending = store.beginCreate(request)
      pending.write(seededBytes(written, 3))
      t.equal(store.has(request.id), false, `${request.id}: invisible while pending`)
      pending.abort()
      t.same(storeState(store), before, `${request.id} after ${written} bytes: memory and slot back`)
      t.equal(store.create({ ...request }).id, request.id, `${request.id}: the id is free again`)
      store.delete(request.id)
    }
  }
  const overflow = store.beginCreate({ id: 'over', mode: 'L', width: 2, height: 2 })
  t.throws(() => overflow.write(new Uint8Array(5)), { code: 'PXP_ERR_BYTE_COUNT', message: /4.*5/ })
  const short = store.beginCreate({ id: 'short', mode: 'L', width: 2, height: 2 })
  short.write(new Uint8Array(3))
  t.throws(() => short.commit(), { code: 'PXP_ERR_BYTE_COUNT' })
  t.same(storeState(store), before, 'forced aborts leave nothing either')
  t.same(events.events.filter((e) => !/^(created|deleted):(block|lines|frames)$/.test(e)), [], 'no event but the test\'s own creates')
})

t.test('on its own: a failing commit gives back; abort is idempotent and a no-op after commit', async (t) => {
  const spec = specFromRequest({ mode: 'L', width: 2, height: 2 }, DEFAULT_SPEC_LIMITS)
  const calls: string[] = []
  const failing = new PendingImage('x', spec, [new Uint8Array(4)], () => calls.push('abort'), () => { throw pxpError('PXP_ERR_CLOSED', 'store') })
  t.throws(() => failing.commit(), { code: 'PXP_ERR_CLOSED' })
  failing.abort()
  t.same(calls, ['abort'], 'the failed commit gave back once')

  calls.length = 0
  const memory = new Uint8Array(4)
  const ok = new PendingImage('y', spec, [memory.subarray(0, 2), memory.subarray(2)], () => calls.push('abort'), () => {
    calls.push('commit')
    return { id: 'y' } as ReturnType<PendingImage['commit']>
  })
  ok.write(Uint8Array.of(1, 2, 3))
  ok.write(Uint8Array.of(4))
  t.same([...memory], [1, 2, 3, 4], 'bytes land across pieces in order')
  t.equal(ok.commit().id, 'y')
  ok.abort()
  t.same(calls, ['commit'], 'abort after a commit does nothing')
  t.throws(() => ok.write(new Uint8Array(1)), { code: 'PXP_ERR_CLOSED' })
})
