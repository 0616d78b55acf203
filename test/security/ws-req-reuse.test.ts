/**
 * §9.2: a request whose `req` is still in flight on the connection is refused with PXP_ERR_BAD_REQUEST,
 * whatever its op: two requests under one id could not be told apart by their replies. It used to be
 * checked only between gets and puts, so a `list` reusing an upload's `req` was answered.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'

t.test('every new request reusing the req of a chunked upload in flight is refused', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'other', width: 2, height: 2, mode: 'L' })
  const c = await WireClient.connect(t, url)
  const req = 'up-1'
  c.send({ op: 'put', req, id: 'up', width: 4, height: 2, mode: 'L', byteLength: 8 })
  c.send({ op: 'chunk', req, offset: 0, data: Buffer.from([1, 2, 3, 4]) })
  const reuses: Array<Record<string, unknown>> = [
    { op: 'list' },
    { op: 'describe', id: 'other' },
    { op: 'create', id: 'new', width: 1, height: 1, mode: 'L' },
    { op: 'delete', id: 'other' },
    { op: 'get', id: 'other' },
    { op: 'put', id: 'new2', width: 1, height: 1, mode: 'L', data: Buffer.from([1]) },
    { op: 'subscribe' },
    { op: 'unsubscribe', sub: 1 },
    { op: 'hello', protocol: 1 },
  ]
  for (const message of reuses) {
    c.send({ ...message, req })
    const reply = await c.next((m) => m.req === req)
    t.equal(reply.code, 'PXP_ERR_BAD_REQUEST', `${message.op as string} with the upload's req: refused`)
    t.match(reply.message, /already in flight/)
  }
  t.ok(server.store.has('other'), 'the refused delete did nothing')
  t.notOk(server.store.has('new') || server.store.has('new2'), 'the refused creates did nothing')
  // The upload itself goes on undisturbed.
  c.send({ op: 'chunk', req, offset: 4, data: Buffer.from([5, 6, 7, 8]) })
  c.send({ op: 'end', req })
  const done = await c.next((m) => m.req === req)
  t.equal(done.op, 'descriptor', 'the upload completes')
  t.same([...(await c.get('up')).bytes], [1, 2, 3, 4, 5, 6, 7, 8])
  // Once answered, the id is free again.
  c.send({ op: 'list', req })
  t.equal((await c.next((m) => m.req === req)).op, 'images', 'a finished request\'s id may be used again')
  t.same(c.invalid, [])
})

t.test('a request reusing the req of a get in flight is refused, and the get goes on', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'big', width: 4096, height: 4096, mode: 'L' })
  server.store.create({ id: 'small', width: 64, height: 4, mode: 'L' })
  const c = await WireClient.connect(t, url)
  // Streams run one at a time: get 7 waits behind the 16 MiB of get 6, so it is surely in flight
  // (queued) when the list, sent with them, is read.
  c.send({ op: 'get', req: 6, id: 'big' })
  c.send({ op: 'get', req: 7, id: 'small' })
  c.send({ op: 'list', req: 7 })
  const first = await c.next((m) => m.req === 7)
  t.match(first, { op: 'error', code: 'PXP_ERR_BAD_REQUEST', message: /already in flight/ }, 'the list is refused')
  t.equal(first.stream, undefined, 'the refusal is not a stream\'s end')
  for (const [req, size] of [[6, 4096 * 4096], [7, 64 * 4]]) {
    const frame = await c.next((m) => m.req === req && m.op === 'frame')
    t.equal((await c.collect(frame as never)).bytes.byteLength, size, `get ${req} streams to its end`)
  }
  t.notOk(c.messages.some((m) => m.op === 'images'), 'the list was never answered')
  t.same(c.invalid, [])
})
