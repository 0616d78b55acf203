/**
 * The pixelport/attach client in this process (it maps the segments by name like any other process would,
 * through its own attach connection): the store API, waits and their limits, events, views and line-based
 * images, and what happens after close.
 */
import t from 'tap'
import { attach, type AttachedStore } from '../../client/attach/index.js'
import { SLOT, slotBase } from '../../protocol/layout.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

if (shmAddon(t) !== null) {
  t.test('the store over the attach socket: create, view, describe, list, delete, events', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const store: AttachedStore = await attach(url)
    t.teardown(() => store.close())
    const events: string[] = []
    const onUpdate = (d: { id: string, generation: number }): void => { events.push(`updated ${d.id} ${d.generation}`) }
    store.on('created', (d) => events.push(`created ${d.id}`))
    store.on('updated', onUpdate)
    store.on('deleted', (d) => events.push(`deleted ${d.id}`))
    const d = await store.create({ width: 6, height: 4, mode: 'L' }, { id: 'c' })
    t.equal(d.location.kind === 'block' && typeof d.location.segment, 'string')
    const v = await store.view('c', { x: 1, y: 1, width: 2, height: 2 }, { id: 'c/v' })
    t.same(v.view, { parent: 'c', x: 1, y: 1, width: 2, height: 2 })
    t.same(store.list().map((x) => x.id).sort(), ['c', 'c/v'])
    t.equal((await store.describe('c/v')).location.kind, 'block')
    const image = await store.open('c')
    const view = await store.open('c/v')
    t.equal(await image.write((data) => { (data as Uint8Array).set(Array.from({ length: 24 }, (_, i) => i)) }), 1)
    t.same(Array.from(view.row(0) as Uint8Array), [7, 8], 'the view sees its rectangle of the same memory')
    t.equal(await view.write((_data, img) => { (img.pixel(1, 1) as Uint8Array).set([99]) }), 2, 'a write through the view commits on the root')
    t.equal(server.store.generation('c'), 2)
    t.equal((await server.store.read('c')).bytes[2 * 6 + 2], 99)
    const updated = new Promise<void>((resolve) => store.on('updated', (x) => { if (x.id === 'c' && x.generation === 3) resolve() }))
    await server.store.write('c', new Uint8Array(24).fill(5))
    await updated
    view.release()
    image.release()
    await store.delete('c')
    t.equal(server.store.has('c'), false)
    await t.rejects(store.open('c'), { code: 'PXP_ERR_NOT_FOUND' })
    const deleted = new Promise<void>((resolve) => { if (events.includes('deleted c')) resolve(); else store.on('deleted', () => resolve()) })
    await deleted
    // Updates are latest-wins: commits close together may be announced once, with the last generation.
    t.ok(events.includes('created c') && events.includes('created c/v') && events.includes('updated c 3'), events.join(', '))
    store.off('updated', onUpdate)
    store.removeAllListeners('created')
    store.removeAllListeners('deleted')
    store.removeAllListeners('updated')
  })

  t.test('waits: more at once than helper threads, abort, timeout, delete', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const store = await attach(url)
    t.teardown(() => store.close())
    const ids = Array.from({ length: 20 }, (_, i) => `w${i}`)
    for (const id of ids) server.store.create({ id, width: 2, height: 2, mode: 'L' })
    const images = await Promise.all(ids.map(async (id) => await store.open(id)))
    const waits = images.map(async (image) => await image.waitForChange(0, { timeout: 10_000 }))
    // Every wait has registered (helpers for 16, short polls for the rest) before the writes land.
    const words = server.store.table.words
    await until(() => ids.every((id) => words[slotBase(server.store.slotOf(id)) + SLOT.FUTEX_WAITERS] !== 0), { what: 'every wait to register', interval: 1 })
    for (const id of ids) await server.store.write(id, new Uint8Array(4).fill(1))
    t.same(await Promise.all(waits), ids.map(() => 1), 'all 20 waits saw generation 1')

    const ac = new AbortController()
    const aborted = images[0].waitForChange(1, { signal: ac.signal })
    setTimeout(() => ac.abort(), 10)
    await t.rejects(aborted, { code: 'PXP_ERR_ABORTED' })
    await t.rejects(images[1].waitForChange(1, { timeout: 20 }), { code: 'PXP_ERR_TIMEOUT' })
    const gone = images[2].waitForChange(1, { timeout: 10_000 })
    setTimeout(() => server.store.delete('w2'), 10)
    const started = performance.now()
    await t.rejects(gone, { code: 'PXP_ERR_NOT_FOUND' }, 'a delete wakes the waiter')
    t.ok(performance.now() - started < 5000)
    for (const image of images) image.release()
  })

  t.test('line-based images, read-only images, frame buffers', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const store = await attach(url)
    t.teardown(() => store.close())
    server.store.create({ id: 'rows', width: 3, height: 4, mode: 'RGB', layout: 'lines' })
    server.store.create({ id: 'ro', width: 2, height: 2, mode: 'L', readonly: true })
    server.store.create({ id: 'fb', width: 4, height: 4, mode: 'L', frames: 3 })
    const rows = await store.open('rows')
    t.equal(await rows.write((data) => { (data as Uint8Array).fill(8) }), 1)
    t.ok((await server.store.read('rows')).bytes.every((b) => b === 8), 'rows written back through shared memory')
    const ro = await store.open('ro')
    await t.rejects(ro.write(() => {}), { code: 'PXP_ERR_READONLY' })
    const fb = await store.open('fb')
    const held = await fb.acquire()
    const loan = await fb.loan()
    ;(loan.data as Uint8Array).fill(4)
    t.equal(await loan.publish(), 1)
    t.equal(held.generation, 0, 'the pinned frame is still generation 0')
    t.ok((held.data as Uint8Array).every((b) => b === 0))
    held.release()
    t.ok((await server.store.read('fb')).bytes.every((b) => b === 4))
    for (const image of [rows, ro, fb]) image.release()
    t.equal(server.store.table.leases(server.store.slotOf('fb')), 0)
  })

  t.test('attach(descriptor) closes its connection with the handle; a closed store refuses work', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'one', width: 2, height: 2, mode: 'L' })
    const image = await attach(server.store.describe('one'))
    t.equal(server.attach!.connectionCount, 1)
    image.release()
    await until(() => server.attach!.connectionCount === 0, { what: 'the released handle to detach' })
    t.pass('released: detached')
    await t.rejects(attach({ ...server.store.describe('one'), id: 'not-there' }), { code: 'PXP_ERR_NOT_FOUND' })
    await t.rejects(attach({ id: 'x' } as never), { code: 'PXP_ERR_VALIDATION' })

    const store = await attach(url)
    const open = await store.open('one')
    const waiting = open.waitForChange(0, { timeout: 10_000 })
    store.close()
    t.equal(store.isClosed, true)
    t.throws(() => store.list(), { code: 'PXP_ERR_CLOSED' })
    await t.rejects(store.describe('one'), { code: 'PXP_ERR_CLOSED' })
    t.equal(open.isReleased, true, 'open handles are released with the store: their leases are the server\'s again')
    await t.rejects(open.read(() => 0), { code: 'PXP_ERR_NOT_LEASED' })
    await t.rejects(waiting, { code: 'PXP_ERR_CLOSED' }, 'a pending wait ends')
    open.release()
    await until(() => server.attach!.connectionCount === 0, { what: 'the closed store to detach' })
    t.equal(server.store.table.leases(server.store.slotOf('one')), 0, 'the server took the lease back')
    await server.close()
    await t.rejects(attach(url), 'nobody listens any more')
  })
}
