/**
 * The attach socket spoken by hand, as a client without atomics (Python) speaks it: the server takes
 * leases, locks and loans on the connection's behalf, refuses what does not fit, and takes everything back
 * when the connection drops.
 */
import t from 'tap'
import { LOCK_TOKEN, SLOT, slotBase } from '../../protocol/layout.js'
import { helloLines as hello } from '../helpers/attach-line-client.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

if (shmAddon(t) !== null) {
  t.test('leases, begin/commit and loan/publish on the connection\'s behalf, with their refusals', async (t) => {
    const { server } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const store = server.store
    store.create({ id: 'plain', width: 4, height: 4, mode: 'L' })
    store.create({ id: 'fb', width: 4, height: 4, mode: 'L', frames: 2 })
    store.create({ id: 'ro', width: 4, height: 4, mode: 'L', readonly: true })
    const c = await hello(server)
    t.equal((await c.ask('hello', { protocol: 1 })).error?.code, 'PXP_ERR_PROTOCOL', 'one hello per connection')
    const plain = (await c.ask('open', { id: 'plain' })).result
    t.match(plain, { slot: store.slotOf('plain'), epoch: Number, descriptor: { id: 'plain' } })
    t.equal(store.table.leases(plain.slot), 1)
    const begun = await c.ask('begin', { slot: plain.slot })
    t.same(begun.result, { generation: 0 })
    const words = store.table.words
    t.ok(words[slotBase(plain.slot) + SLOT.WRITE_LOCK] >= LOCK_TOKEN.EXTERNAL, 'locked with the connection\'s token')
    t.equal((await c.ask('begin', { slot: plain.slot })).error?.code, 'PXP_ERR_VALIDATION', 'no second begin')
    new Uint8Array(store.blockBuffer((plain.descriptor.location).block)!, plain.descriptor.location.byteOffset, 16).fill(7)
    t.same((await c.ask('commit', { slot: plain.slot })).result, { generation: 1 })
    t.equal((await c.ask('commit', { slot: plain.slot })).error?.code, 'PXP_ERR_VALIDATION', 'nothing to commit')
    t.ok((await store.read('plain')).bytes.every((b) => b === 7))
    t.equal((await c.ask('loan', { slot: plain.slot })).error?.code, 'PXP_ERR_VALIDATION', 'plain images are not loaned')

    const fb = (await c.ask('open', { id: 'fb' })).result
    t.equal((await c.ask('begin', { slot: fb.slot })).error?.code, 'PXP_ERR_VALIDATION', 'frame buffers are loaned, not locked')
    const { frame } = (await c.ask('loan', { slot: fb.slot })).result
    t.equal(frame, 1, 'the buffer that is not the front')
    t.equal((await c.ask('loan', { slot: fb.slot, timeoutMs: 20 })).error?.code, 'PXP_ERR_LOCK_TIMEOUT', 'the only other buffer is on loan')
    t.equal((await c.ask('publish', { slot: fb.slot, frame: 0 })).error?.code, 'PXP_ERR_VALIDATION', 'only a loaned buffer is published')
    t.same((await c.ask('publish', { slot: fb.slot, frame })).result, { generation: 1 })
    const again = (await c.ask('loan', { slot: fb.slot })).result.frame
    t.same((await c.ask('cancel', { slot: fb.slot, frame: again })).result, null)
    t.equal(store.table.word(store.slotOf('fb'), SLOT.PINS + again), 0, 'cancelled')

    const ro = (await c.ask('open', { id: 'ro' })).result
    t.equal((await c.ask('begin', { slot: ro.slot })).error?.code, 'PXP_ERR_READONLY')
    t.equal((await c.ask('begin', { slot: 9999 })).error?.code, 'PXP_ERR_VALIDATION', 'a slot that is not open here')
    t.equal((await c.ask('begin', { slot: plain.slot, timeoutMs: -1 })).error?.code, 'PXP_ERR_VALIDATION')
    t.equal((await c.ask('open', { id: 'missing' })).error?.code, 'PXP_ERR_NOT_FOUND')
    t.equal((await c.ask('teleport')).error?.code, 'PXP_ERR_UNKNOWN_OP')
    t.same((await c.ask('close', { slot: ro.slot })).result, null)
    t.equal(store.table.leases(ro.slot), 0)
    t.equal((await c.ask('close', { slot: ro.slot })).error?.code, 'PXP_ERR_VALIDATION', 'closed once')

    // A write begun and never committed, a lease on a deleted image: dropping the connection recovers both.
    await c.ask('begin', { slot: plain.slot })
    store.delete('fb')
    t.equal(store.stats().retired, 1)
    c.socket.destroy()
    await c.closed
    await until(() => server.attach!.connectionCount === 0, { what: 'the server to drop the connection' })
    t.equal(words[slotBase(plain.slot) + SLOT.WRITE_LOCK], 0, 'the lock came back')
    t.equal(words[slotBase(plain.slot) + SLOT.SEQ] & 1, 0, 'the seqlock is closed')
    t.equal(store.generation('plain'), 2, 'what was begun is committed')
    t.equal(store.stats().retired, 0, 'the deleted image\'s memory is reused')
  })

  t.test('events for a watching connection; a client that does not read is dropped; a bad line ends it', async (t) => {
    const { server } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const c = await hello(server)
    t.same((await c.ask('watch', { on: true })).result, null)
    const created = (await c.ask('create', { request: { id: 'e', width: 2, height: 2, mode: 'L' } })).result
    t.equal(created.id, 'e')
    t.equal((await c.ask('view', { id: 'e', view: { x: 0, y: 0, width: 1, height: 1, id: 'e/v' } })).result.id, 'e/v')
    t.equal((await c.ask('list')).result.length, 2)
    t.equal((await c.ask('describe', { id: 'e/v' })).result.base, 'e')
    await server.store.write('e', new Uint8Array(4))
    await c.ask('delete', { id: 'e' })
    await until(() => c.events.some((e) => e.type === 'deleted'), { what: 'the deleted event' })
    t.same(c.events.map((e) => `${e.type} ${e.descriptor.id}`).slice(0, 2), ['created e', 'created e/v'])
    t.ok(c.events.some((e) => e.type === 'updated' && e.descriptor.id === 'e'))
    await c.ask('watch', { on: false })
    const before = c.events.length
    await c.ask('create', { request: { id: 'quiet', width: 2, height: 2, mode: 'L' } })
    t.equal(c.events.length, before, 'no events after unwatching')
    c.socket.write('{"op":"released","slot":0}\n')
    c.socket.write('{"op":"list"}\n')
    await c.closed
    t.pass('a request without req closes the connection')

    const big = await hello(server)
    big.socket.write('x'.repeat(1024 * 1024 + 10))
    await big.closed
    t.pass('an endless line closes the connection')

    // A watcher that stops reading: the server queues at most a few MiB for it, then lets it go.
    const slow = await hello(server)
    await slow.ask('watch', { on: true })
    slow.socket.pause()
    for (let i = 0; i < 8000 && server.attach!.connectionCount > 0; i++) {
      server.store.create({ id: `flood/${i}`, width: 2, height: 2, mode: 'L' })
      server.store.delete(`flood/${i}`)
    }
    t.equal(server.attach!.connectionCount, 0, 'the connection that did not read was dropped')
    slow.socket.destroy()
  })
}
