/**
 * Subscriptions: events in order, filters, frames with `data: true`, the two slow-consumer policies and
 * their counts, limits, and snapshots given back.
 */
import { once } from 'node:events'
import { setImmediate as turn } from 'node:timers/promises'
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { nextServerSocket, WireClient } from '../helpers/wire-client.js'

const KiB = 1024

t.test('created, updated and deleted events arrive in order, filtered by ids', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const all = await c.request({ op: 'subscribe' })
  const only = await c.request({ op: 'subscribe', ids: ['b', 'later'], policy: 'all' })
  t.match(all, { op: 'subscribed', sub: Number })
  t.not(all.sub, only.sub)
  server.store.create({ id: 'a', width: 2, height: 2, mode: 'L' })
  server.store.create({ id: 'b', width: 2, height: 2, mode: 'L' })
  await server.store.write('b', Buffer.alloc(4, 1))
  server.store.delete('a')
  server.store.create({ id: 'later', width: 1, height: 1, mode: 'L' })
  const seen = (sub: number, n: number): Promise<Array<[string, string, number]>> => Promise.all(Array.from({ length: n }, async () => {
    const e = await c.next((m) => m.op === 'event' && m.sub === sub)
    t.equal(e.descriptor.id, e.id)
    return [e.type, e.id, e.generation] as [string, string, number]
  }))
  t.same(await seen(all.sub, 5), [['created', 'a', 0], ['created', 'b', 0], ['updated', 'b', 1], ['deleted', 'a', 0], ['created', 'later', 0]])
  t.same(await seen(only.sub, 3), [['created', 'b', 0], ['updated', 'b', 1], ['created', 'later', 0]])
  t.same(c.invalid, [])
})

t.test('unsubscribe stops events; subscriptions are limited per connection', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const { limits } = await c.request({ op: 'hello', protocol: 1 })
  const first = await c.request({ op: 'subscribe', ids: ['x'] })
  const subs = [first.sub]
  for (let i = 1; i < limits.maxSubscriptions; i++) subs.push((await c.request({ op: 'subscribe', ids: ['x'] })).sub)
  t.match(await c.request({ op: 'subscribe' }), { op: 'error', code: 'PXP_ERR_TOO_MANY_SUBSCRIPTIONS' })
  t.match(await c.request({ op: 'subscribe', policy: 'all', queue: limits.maxQueue + 1 }), { op: 'error', code: 'PXP_ERR_VALIDATION', message: /maxQueue/ })
  for (const sub of subs.slice(1)) t.match(await c.request({ op: 'unsubscribe', sub }), { op: 'unsubscribed', sub })
  t.match(await c.request({ op: 'unsubscribe', sub: subs[1] }), { op: 'error', code: 'PXP_ERR_BAD_REQUEST' })
  server.store.create({ id: 'x', width: 1, height: 1, mode: 'L' })
  const probe = await c.request({ op: 'list' })
  t.equal(probe.op, 'images')
  const events = c.messages.filter((m) => m.op === 'event')
  t.same(events.map((e) => e.sub), [first.sub], 'only the remaining subscription got the event')
})

t.test('data: true follows created and updated events with the frame of that generation', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 4 * KiB })
  const c = await WireClient.connect(t, url)
  for (const policy of ['latest', 'all']) {
    const id = `feed-${policy}`
    const { sub } = await c.request({ op: 'subscribe', ids: [id], policy, data: true })
    server.store.create({ id, width: 40, height: 30, mode: 'RGB' }, Buffer.alloc(3600, 7))
    for (let g = 1; g <= 3; g++) await server.store.write(id, Buffer.alloc(3600, 7 + g))
    server.store.delete(id)
    const got: Array<[string, number, number | null]> = []
    for (;;) {
      const e = await c.next((m) => m.op === 'event' && m.sub === sub)
      if (e.type === 'deleted') {
        got.push([e.type, e.generation, null])
        break
      }
      const frame = await c.next((m) => m.op === 'frame' && m.sub === sub)
      t.equal(frame.generation, e.generation)
      t.same(frame.descriptor, e.descriptor)
      const { bytes } = await c.collect(frame as never)
      t.ok(bytes.every((v) => v === bytes[0]), 'one consistent generation')
      got.push([e.type, e.generation, bytes[0]])
    }
    if (policy === 'all') {
      t.same(got, [['created', 0, 7], ['updated', 1, 8], ['updated', 2, 9], ['updated', 3, 10], ['deleted', 3, null]], 'all: every generation, in order')
    } else {
      t.same(got[0], ['created', 0, 7])
      t.same(got.at(-1), ['deleted', 3, null])
      for (const [, generation, value] of got.slice(1, -1)) t.equal(value, 7 + generation, 'frame bytes are that generation')
    }
  }
  await c.request({ op: 'list' })
  t.equal(server.snapshots.stats().snapshots, 0, 'frames of deleted images were released')
  t.same(c.invalid, [])
})

t.test('latest conflates while the client does not read; skipped counts every generation it missed', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 16 * KiB, highWaterMark: 16 * KiB })
  const size = 256 * 256 * 4
  server.store.create({ id: 'v', width: 256, height: 256, mode: 'RGBA' })
  const side = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const serverSocket = await side
  const plain = await c.request({ op: 'subscribe', ids: ['v'], policy: 'latest' })
  const withData = await c.request({ op: 'subscribe', ids: ['v'], policy: 'latest', data: true })
  c.pause()
  // Write until the server is holding back (its buffer to this client is full), then some more.
  let writes = 0
  while (serverSocket.bufferedAmount < 16 * KiB) {
    await server.store.write('v', Buffer.alloc(size, ++writes & 0xff))
    await turn()
  }
  for (let i = 0; i < 50; i++) await server.store.write('v', Buffer.alloc(size, ++writes & 0xff))
  c.resume()
  for (const sub of [plain.sub, withData.sub]) {
    let last = 0
    let total = 0
    let events = 0
    while (last < writes) {
      const e = await c.next((m) => m.op === 'event' && m.sub === sub)
      t.ok(e.generation > last, 'generations only move forward')
      total += 1 + e.skipped
      last = e.generation
      events++
    }
    t.equal(total, writes, `${sub === plain.sub ? 'events' : 'frames'}: ${events} delivered + skipped = all ${writes} generations`)
    t.ok(events < writes, `conflated ${writes} generations into ${events} events`)
  }
  t.same(c.invalid.length, 0)
})

t.test('policy all: a client that falls behind its queue is told and disconnected with 4508', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 16 * KiB, highWaterMark: 16 * KiB })
  const size = 128 * 128 * 4
  server.store.create({ id: 'q', width: 128, height: 128, mode: 'RGBA' })
  const side = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const serverSocket = await side
  const { sub } = await c.request({ op: 'subscribe', ids: ['q'], policy: 'all', data: true, queue: 4 })
  c.pause()
  let writes = 0
  while (serverSocket.readyState === serverSocket.OPEN && writes < 100000) {
    await server.store.write('q', Buffer.alloc(size, ++writes & 0xff))
    await turn()
  }
  t.not(serverSocket.readyState, serverSocket.OPEN, `the server closed the connection after ${writes} writes`)
  c.resume()
  const closed = await c.closed
  t.same(closed, { code: 4508, reason: 'PXP_ERR_SUBSCRIPTION_OVERFLOW' })
  t.match(c.messages.find((m) => m.op === 'error'), { op: 'error', req: null, sub, code: 'PXP_ERR_SUBSCRIPTION_OVERFLOW', message: /queue bound/ })
  // Frames that were queued (each holding a snapshot) were all given back.
  if (serverSocket.readyState !== serverSocket.CLOSED) await once(serverSocket, 'close')
  server.store.delete('q')
  t.equal(server.snapshots.stats().snapshots, 0, 'no snapshot leaked')
})

t.test('an image deleted while its frame waits is skipped, not an error', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const { sub } = await c.request({ op: 'subscribe', policy: 'latest', data: true })
  server.store.create({ id: 'gone', width: 4, height: 4, mode: 'L' })
  server.store.delete('gone')
  server.store.create({ id: 'kept', width: 4, height: 4, mode: 'L' })
  const e = await c.next((m) => m.op === 'event' && m.sub === sub)
  t.match(e, { type: 'created', id: 'kept' }, 'created-then-deleted before delivery: never mentioned')
  t.equal((await c.next((m) => m.op === 'frame')).sub, sub)
  t.equal(c.messages.filter((m) => m.op === 'error').length, 0)
})
