import t from 'tap'
import { startServer } from '../helpers/server.js'
import { startAgent } from '../helpers/agent.js'
import { SLOT, slotBase } from '../../protocol/layout.js'
import { until } from '../helpers/until.js'

t.test('opening an image in an already-mapped block sends no message', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'first', width: 8, height: 8, mode: 'L' })
  server.store.create({ id: 'second', width: 8, height: 8, mode: 'L' })
  const w = await startAgent(server)
  await w.call('open', 'first')
  const before = server.workers.stats().requests
  await w.call('open', 'second')
  await w.call('release', 'second')
  await w.call('open', 'second')
  t.equal(server.workers.stats().requests, before, 'no request for the second image or a reopen')
  t.equal((await w.fail('open', 'missing')).code, 'PXP_ERR_NOT_FOUND')
  t.equal(server.workers.stats().requests, before, 'not-found is answered from shared memory too')
})

t.test('many writers and readers: no torn reads, no lost commits', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'hot', width: 256, height: 256, mode: 'L' })
  const writers = await Promise.all([startAgent(server), startAgent(server)])
  const readers = await Promise.all([startAgent(server), startAgent(server)])
  for (const a of [...writers, ...readers]) await a.call('open', 'hot')
  const frames = 150
  // The server reads consistent copies concurrently too.
  let serverTorn = 0
  let reading = true
  const serverReads = (async () => {
    while (reading) {
      const { bytes } = await server.store.read('hot')
      if (bytes.some((b) => b !== bytes[0])) serverTorn++
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  const [torn1, torn2] = await Promise.all([
    readers[0].call('readFrames', 'hot', 300),
    readers[1].call('readFrames', 'hot', 300),
    ...writers.map(async (w) => await w.call('writeFrames', 'hot', frames)),
  ])
  reading = false
  await serverReads
  t.equal(torn1.torn + torn2.torn, 0, 'workers never saw a torn frame')
  t.equal(serverTorn, 0, 'the server never copied a torn frame')
  t.equal(server.store.generation('hot'), 2 * frames, 'every commit counted exactly once')
  const [min, max] = await readers[0].call('readUniform', 'hot')
  t.equal(min, max)
})

t.test('waitForChange wakes on a commit, times out, aborts, and fails on delete', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'w', width: 4, height: 4, mode: 'L' })
  const [waiter, writer] = await Promise.all([startAgent(server), startAgent(server)])
  await waiter.call('open', 'w')
  await writer.call('open', 'w')
  const woke = waiter.call('waitForChange', 'w', 0, 5000)
  await writer.call('fill', 'w', 5)
  t.equal(await woke, 1, 'a commit by another worker wakes the waiter with the new generation')
  const serverWoke = waiter.call('waitForChange', 'w', 1, 5000)
  await server.store.write('w', new Uint8Array(16).fill(6))
  t.equal(await serverWoke, 2, 'a commit by the server (HTTP PUT path) wakes it too')
  t.equal(await waiter.call('waitForChange', 'w', 0, 1000), 2, 'an old generation returns at once')
  t.equal((await waiter.fail('waitForChange', 'w', 2, 30)).code, 'PXP_ERR_TIMEOUT')
  t.equal((await waiter.fail('waitAborted', 'w', 2)).code, 'PXP_ERR_ABORTED')
  const gone = waiter.fail('waitForChange', 'w', 2, 5000)
  server.store.delete('w')
  t.equal((await gone).code, 'PXP_ERR_NOT_FOUND', 'deleting the image ends the wait')
})

t.test('deleting an image a worker holds keeps its memory until release', async (t) => {
  const { server } = await startServer(t)
  const store = server.store
  store.create({ id: 'held', width: 64, height: 64, mode: 'L' })
  const w = await startAgent(server)
  await w.call('open', 'held')
  await w.call('fill', 'held', 77)
  const usedWhileHeld = store.stats().used
  store.delete('held')
  t.equal(store.stats().retired, 1, 'retired, not freed')
  t.equal(store.stats().used, usedWhileHeld, 'memory still reserved')
  // New images cannot land on the held memory.
  store.create({ id: 'other', width: 64, height: 64, mode: 'L' }, new Uint8Array(4096).fill(1))
  t.same((await w.call('row', 'held', 0)).slice(0, 4), [77, 77, 77, 77], 'the worker still sees its pixels')
  t.equal((await w.fail('open', 'held')).code, 'PXP_ERR_NOT_FOUND', 'no new handles on a deleted image')
  await w.call('release', 'held')
  // The release notice is asynchronous: wait for the server to process it.
  await until(() => store.stats().retired === 0, { what: 'the released image to be freed' })
  t.pass('freed after release')
  t.equal(store.stats().used, usedWhileHeld, 'the freed memory went back (other image uses the same amount)')
})

t.test('a worker killed mid-write does not wedge the image; its leases come back', async (t) => {
  const { server } = await startServer(t)
  const store = server.store
  store.create({ id: 'victim', width: 32, height: 32, mode: 'L' })
  const w = await startAgent(server)
  await w.call('open', 'victim')
  const slot = store.slotOf('victim')
  t.equal((await w.fail('crashWhileWriting', 'victim')).code, 'EXITED')
  t.equal(await w.exited, 3)
  await until(() => store.table.leases(slot) === 0, { what: 'the dead worker\'s leases to be recovered' })
  t.pass('leases recovered')
  t.equal(Atomics.load(store.table.words, slotBase(slot) + SLOT.WRITE_LOCK), 0, 'lock recovered')
  t.equal(Atomics.load(store.table.words, slotBase(slot) + SLOT.SEQ) & 1, 0, 'seqlock closed')
  t.equal(store.generation('victim'), 1, 'the interrupted write became a generation')
  const done = await store.write('victim', new Uint8Array(1024).fill(1))
  t.equal(done.generation, 2, 'the server can write again')
  const w2 = await startAgent(server)
  await w2.call('open', 'victim')
  t.equal(await w2.call('fill', 'victim', 3), 3, 'other workers can write again')
})

t.test('a worker that exits holding handles gives them back', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'x', width: 8, height: 8, mode: 'L' })
  const w = await startAgent(server)
  await w.call('open', 'x')
  await w.call('exit')
  await w.exited
  const slot = server.store.slotOf('x')
  await until(() => server.store.table.leases(slot) === 0, { what: 'the exited worker\'s leases to come back' })
  t.equal(server.workers.stats().connections, 0)
})

t.test('line-based images: rows zero-copy, data a read-only copy per generation', async (t) => {
  const { server } = await startServer(t)
  const bytes = Uint8Array.from({ length: 6 * 5 * 3 }, (_, i) => i)
  server.store.create({ id: 'lines', width: 6, height: 5, mode: 'RGB', layout: 'lines' }, bytes)
  const w = await startAgent(server)
  const d = await w.call('open', 'lines')
  t.equal(d.layout, 'lines')
  t.equal(d.copied, true)
  t.equal(d.readonly, true)
  t.same(await w.call('row', 'lines', 2), Array.from(bytes.subarray(36, 54)))
  const info = await w.call('dataInfo', 'lines')
  t.equal(info.shared, false, 'data is a private copy')
  const read = await w.call('read', 'lines')
  t.same(read.bytes, Array.from(bytes))
  await w.call('setPixel', 'lines', 0, 4, [1, 2, 3])
  const after = await server.store.read('lines')
  t.same(Array.from(after.bytes.subarray(72, 75)), [1, 2, 3], 'writes reach the rows in shared memory')
  t.equal(after.generation, 1)
})

t.test('views: zero-copy strided access; read-only images and views refuse writes', async (t) => {
  const { server } = await startServer(t)
  const bytes = Uint8Array.from({ length: 8 * 4 }, (_, i) => i)
  server.store.create({ id: 'p', width: 8, height: 4, mode: 'L' }, bytes)
  server.store.createView('p', { id: 'p/roi', x: 2, y: 1, width: 3, height: 2 })
  server.store.createView('p', { id: 'p/ro', x: 0, y: 0, width: 2, height: 2, readonly: true })
  server.store.create({ id: 'ro', width: 2, height: 2, mode: 'L', readonly: true })
  const w = await startAgent(server)
  const d = await w.call('open', 'p/roi')
  t.same(d.__array_interface__.strides, [8, 1])
  t.equal(d.__array_interface__.offset, 10)
  t.same(await w.call('row', 'p/roi', 1), [18, 19, 20])
  const read = await w.call('read', 'p/roi')
  t.same(read.bytes, [10, 11, 12, 18, 19, 20], 'a consistent read of a view is its C-order copy')
  await w.call('setPixel', 'p/roi', 0, 0, [200])
  t.equal((await server.store.read('p')).bytes[10], 200, 'a write through the view lands in the parent')
  await w.call('open', 'p/ro')
  await w.call('open', 'ro')
  t.equal((await w.fail('fill', 'p/ro', 1)).code, 'PXP_ERR_READONLY')
  t.equal((await w.fail('fill', 'ro', 1)).code, 'PXP_ERR_READONLY')
})

t.test('loan/publish: readers keep their frame while the producer publishes new ones', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'cam', width: 16, height: 16, mode: 'L', frames: 3 })
  const [producer, reader] = await Promise.all([startAgent(server), startAgent(server)])
  await producer.call('open', 'cam')
  await reader.call('open', 'cam')
  await producer.call('loan', 'cam', 1)
  t.equal(await producer.call('publish', 'cam'), 1)
  const held = await reader.call('acquireHold', 'cam')
  t.same(held, { generation: 1, first: 1, copied: false }, 'the reader pins generation 1 without a copy')
  for (let v = 2; v <= 6; v++) {
    await producer.call('loan', 'cam', v)
    await producer.call('publish', 'cam')
  }
  t.equal(await reader.call('heldFirst'), 1, 'the pinned frame was never overwritten')
  await reader.call('heldRelease')
  const now = await reader.call('read', 'cam')
  t.equal(now.generation, 6)
  t.equal(now.bytes[0], 6)
  t.equal((await server.store.read('cam')).bytes[255], 6, 'the server reads the published frame')
  await server.store.write('cam', new Uint8Array(256).fill(9))
  t.equal((await reader.call('read', 'cam')).bytes[0], 9, 'a server-side write publishes through a loan too')
})

t.test('change events reach workers in order', async (t) => {
  const { server } = await startServer(t)
  const [a, b] = await Promise.all([startAgent(server), startAgent(server)])
  await a.call('create', { width: 2, height: 2, mode: 'L' }, { id: 'ev' })
  await a.call('open', 'ev')
  await a.call('fill', 'ev', 1)
  await a.call('fill', 'ev', 2)
  await a.call('release', 'ev')
  await a.call('delete', 'ev')
  await b.call('list')
  let events: any[] = []
  await until(async () => (events = events.concat(await b.call('events'))).at(-1)?.type === 'deleted', { what: 'the deleted event to reach the other worker' })
  // Commits made through shared memory are announced latest-wins: updates may be conflated, never reordered.
  t.same(events[0], { type: 'created', id: 'ev', generation: 0 })
  t.same(events.at(-1), { type: 'deleted', id: 'ev', generation: 2 })
  const updates = events.slice(1, -1)
  t.ok(updates.length >= 1 && updates.every((e) => e.type === 'updated'), 'only updates in between')
  t.same(updates.map((e) => e.generation), [...updates.map((e) => e.generation)].sort((x, y) => x - y), 'in generation order')
  t.equal(updates.at(-1).generation, 2, 'the last update names the last generation')
})
