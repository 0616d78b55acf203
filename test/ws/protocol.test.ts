/**
 * Protocol round trips over a real socket: every op, its reply, and its errors by code.
 */
import { once } from 'node:events'
import t from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { nextServerSocket, WireClient } from '../helpers/wire-client.js'

const CHUNK = 4096

function pattern (n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff
  return b
}

t.test('hello answers with the protocol version and every limit', async (t) => {
  const { url } = await startServer(t, { chunkSize: CHUNK, highWaterMark: 65536 })
  const c = await WireClient.connect(t, url)
  const welcome = await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, client: 'test' })
  t.equal(welcome.op, 'welcome')
  t.equal(welcome.protocol, PROTOCOL_VERSION)
  t.match(welcome.limits, { chunkSize: CHUNK, highWaterMark: 65536, maxImageBytes: 64 * 1024 * 1024, maxSubscriptions: Number, maxStreams: Number, maxUploads: Number, maxQueue: Number, defaultQueue: Number, maxMessageBytes: Number })
  t.same(c.invalid, [])
})

t.test('a client speaking another protocol version is told so and closed with 1002', async (t) => {
  const { url } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const reply = await c.request({ op: 'hello', protocol: 99 })
  t.match(reply, { op: 'error', code: 'PXP_ERR_PROTOCOL', message: /version 99/ })
  t.same(await c.closed, { code: 1002, reason: 'PXP_ERR_PROTOCOL' })
})

t.test('list, describe, create and delete', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  t.same((await c.request({ op: 'list' })).images, [])
  const created = await c.request({ op: 'create', id: 'cam/1', width: 8, height: 4, mode: 'RGB' })
  t.equal(created.op, 'descriptor')
  t.match(created.descriptor, { id: 'cam/1', width: 8, height: 4, channels: 3, typestr: '|u1', shape: [4, 8, 3], byteLength: 96, generation: 0, __array_interface__: { version: 3, shape: [4, 8, 3], data: null } })
  const raw = await c.request({ op: 'create', shape: [3, 5], typestr: '<f4', layout: 'lines' })
  t.match(raw.descriptor, { mode: 'F', layout: 'lines', copied: true })
  t.same((await c.request({ op: 'describe', id: 'cam/1' })).descriptor, server.store.describe('cam/1'))
  t.same((await c.request({ op: 'list' })).images.map((d: { id: string }) => d.id).sort(), ['cam/1', raw.descriptor.id].sort())
  t.match(await c.request({ op: 'delete', id: 'cam/1' }), { op: 'deleted', req: Number, id: 'cam/1' })
  t.equal(server.store.has('cam/1'), false)
  t.same(c.invalid, [])
})

t.test('errors carry the registry code and the request id; the connection stays usable', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ op: 'describe', id: 'nope' }, 'PXP_ERR_NOT_FOUND'],
    [{ op: 'create', width: 4, height: 4, mode: 'XYZ' }, 'PXP_ERR_BAD_MODE'],
    [{ op: 'create', shape: [4, 4], typestr: '<c8' }, 'PXP_ERR_BAD_DTYPE'],
    [{ op: 'create', width: 4, height: 4, mode: 'L', shape: [4, 4] }, 'PXP_ERR_VALIDATION'],
    [{ op: 'create', width: 70000, height: 4, mode: 'L' }, 'PXP_ERR_BAD_SHAPE'],
    [{ op: 'create', width: 10000, height: 10000, mode: 'RGBA' }, 'PXP_ERR_TOO_LARGE'],
    [{ op: 'delete', id: 'nope' }, 'PXP_ERR_NOT_FOUND'],
    [{ op: 'get', id: 'nope' }, 'PXP_ERR_NOT_FOUND'],
    [{ op: 'unsubscribe', sub: 7 }, 'PXP_ERR_BAD_REQUEST'],
    [{ op: 'end' }, 'PXP_ERR_BAD_REQUEST'],
    [{ op: 'chunk', offset: 0, data: Buffer.alloc(1) }, 'PXP_ERR_BAD_REQUEST'],
  ]
  for (const [message, code] of cases) {
    const reply = await c.request(message)
    t.match(reply, { op: 'error', code, message: String }, `${JSON.stringify(message).slice(0, 60)} → ${code}`)
  }
  await c.request({ op: 'create', id: 'dup', width: 2, height: 2, mode: 'L' })
  t.match(await c.request({ op: 'create', id: 'dup', width: 2, height: 2, mode: 'L' }), { code: 'PXP_ERR_ALREADY_EXISTS' })
  t.equal(server.store.size, 1, 'failed creates left nothing behind')
  t.equal((await c.request({ op: 'list' })).op, 'images')
  t.same(c.invalid, [])
})

t.test('get streams a frame header, ordered chunks of chunkSize, and an end', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  const bytes = pattern(100 * 70 * 3)
  server.store.create({ id: 'img', width: 100, height: 70, mode: 'RGB' }, bytes)
  const req = c.req()
  c.send({ op: 'get', req, id: 'img' })
  const frame = await c.next()
  t.match(frame, { op: 'frame', req, generation: 0, region: null, shape: [70, 100, 3], typestr: '|u1', byteLength: bytes.length, chunks: Math.ceil(bytes.length / CHUNK) })
  const got = Buffer.alloc(bytes.length)
  let expected = 0
  for (;;) {
    const m = await c.next()
    if (m.op === 'end') {
      t.match(m, { stream: frame.stream, req, byteLength: bytes.length })
      break
    }
    t.equal(m.op, 'chunk')
    t.equal(m.stream, frame.stream)
    t.equal(m.offset, expected, 'chunks arrive in order')
    t.ok(m.data.byteLength <= CHUNK)
    got.set(m.data, m.offset)
    expected += m.data.byteLength
  }
  t.ok(got.equals(bytes), 'byte-exact')
  t.same(c.invalid, [])
})

t.test('with fragmentSize, chunk messages come as fragmented messages with the same content', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  const welcome = await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, fragmentSize: 1024 })
  t.equal(welcome.fragmentSize, 1024)
  const bytes = pattern(50 * 40 * 3, 2)
  server.store.create({ id: 'f', width: 50, height: 40, mode: 'RGB' }, bytes)
  const got = await c.get('f')
  t.ok(got.bytes.equals(bytes), 'byte-exact through fragmented messages')
  t.equal(got.chunks, Math.ceil(bytes.length / CHUNK))
  const big = await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, fragmentSize: 1 << 30 })
  t.equal(big.fragmentSize, CHUNK + 48, 'capped: a chunk message never needs more')
  t.match(await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, fragmentSize: 100 }), { op: 'error', code: 'PXP_ERR_VALIDATION' })
  t.same(c.invalid, [])
})

t.test('get of a view, a line-based image and a frame-buffered image returns C-order bytes', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  const bytes = pattern(64 * 48 * 4, 3)
  server.store.create({ id: 'base', width: 64, height: 48, mode: 'RGBA' }, bytes)
  server.store.createView('base', { id: 'view', x: 5, y: 7, width: 20, height: 9 })
  server.store.create({ id: 'lines', width: 64, height: 48, mode: 'RGBA', layout: 'lines' }, bytes)
  const expectedView = Buffer.alloc(20 * 9 * 4)
  for (let r = 0; r < 9; r++) bytes.copy(expectedView, r * 80, ((7 + r) * 64 + 5) * 4, ((7 + r) * 64 + 25) * 4)
  const view = await c.get('view')
  t.ok(view.bytes.equals(expectedView), 'view bytes are the rectangle, C-contiguous')
  t.same(view.frame.shape, [9, 20, 4])
  t.ok((await c.get('lines')).bytes.equals(bytes), 'line-based image comes back contiguous')
  const framed = server.store.create({ id: 'framed', width: 64, height: 48, mode: 'RGBA', frames: 3 })
  await server.store.write(framed.id, bytes)
  const got = await c.get('framed')
  t.ok(got.bytes.equals(bytes), 'frame-buffered image: the published buffer')
  t.equal(got.frame.generation, 1)
})

t.test('get of a generation: the one a reader still holds, else PXP_ERR_GENERATION_GONE', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  server.store.create({ id: 'g', width: 16, height: 16, mode: 'L' }, Buffer.alloc(256, 1))
  // Hold generation 0 the way a slow reader would.
  const held = await server.snapshots.acquire('g')
  await server.store.write('g', Buffer.alloc(256, 2))
  const old = await c.get('g', { generation: 0 })
  t.equal(old.frame.generation, 0)
  t.ok(old.bytes.equals(Buffer.alloc(256, 1)))
  held.release()
  await server.store.write('g', Buffer.alloc(256, 3))
  t.match(await c.request({ op: 'get', id: 'g', generation: 0 }), { op: 'error', code: 'PXP_ERR_GENERATION_GONE' })
  const current = await c.get('g', { generation: 2 })
  t.ok(current.bytes.equals(Buffer.alloc(256, 3)))
})

t.test('put inline creates an image; put in chunks creates one straight into shared memory', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  const small = pattern(4 * 4 * 3)
  const a = await c.request({ op: 'put', id: 'a', width: 4, height: 4, mode: 'RGB', data: small })
  t.match(a, { op: 'descriptor', descriptor: { id: 'a', generation: 0 } })
  t.ok((await server.store.read('a')).bytes.every((v, i) => v === small[i]))

  const big = pattern(200 * 100 * 2, 5)
  const req = c.req()
  c.send({ op: 'put', req, id: 'b', shape: [100, 200], typestr: '<u2', byteLength: big.length })
  for (let off = 0; off < big.length; off += 3000) c.send({ op: 'chunk', req, offset: off, data: big.subarray(off, off + 3000) })
  t.equal(server.store.has('b'), false, 'invisible until end')
  c.send({ op: 'end', req })
  const reply = await c.next((m) => m.req === req)
  t.match(reply, { op: 'descriptor', descriptor: { id: 'b', mode: 'I;16', typestr: '<u2' } })
  t.ok(Buffer.from((await server.store.read('b')).bytes).equals(big))
  const anonymous = await c.request({ op: 'put', width: 2, height: 1, mode: 'L', data: Buffer.from([1, 2]) })
  t.match(anonymous.descriptor.id, /^img-/)
})

t.test('put overwrites an existing image as one new generation', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  server.store.create({ id: 'o', width: 50, height: 50, mode: 'RGB' })
  const bytes = pattern(50 * 50 * 3, 9)
  const req = c.req()
  c.send({ op: 'put', req, id: 'o', byteLength: bytes.length })
  c.send({ op: 'chunk', req, offset: 0, data: bytes.subarray(0, 5000) })
  c.send({ op: 'chunk', req, offset: 5000, data: bytes.subarray(5000) })
  t.equal(server.store.generation('o'), 0, 'nothing committed before end')
  c.send({ op: 'end', req })
  t.match(await c.next((m) => m.req === req), { op: 'descriptor', descriptor: { id: 'o', generation: 1 } })
  t.ok(Buffer.from((await server.store.read('o')).bytes).equals(bytes))
  const inline = await c.request({ op: 'put', id: 'o', width: 50, height: 50, mode: 'RGB', data: Buffer.alloc(bytes.length, 4) })
  t.match(inline, { op: 'descriptor', descriptor: { generation: 2 } })
  t.match(await c.request({ op: 'put', id: 'o', width: 40, height: 50, mode: 'RGB', data: Buffer.alloc(6000) }), { code: 'PXP_ERR_VALIDATION', message: /delete it first/ })
  t.match(await c.request({ op: 'put', id: 'o', data: Buffer.alloc(10) }), { code: 'PXP_ERR_BYTE_COUNT' })
  server.store.create({ id: 'ro', width: 2, height: 2, mode: 'L', readonly: true })
  t.match(await c.request({ op: 'put', id: 'ro', data: Buffer.alloc(4) }), { code: 'PXP_ERR_READONLY' })
})

t.test('bad uploads fail with a code, give their memory back, and drop their remaining chunks', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const c = await WireClient.connect(t, url)
  const used = server.store.stats().used

  // Chunks out of order: refused at once; the chunks and end still in flight are ignored.
  let req = c.req()
  c.send({ op: 'put', req, id: 'x', width: 10, height: 10, mode: 'L', byteLength: 100 })
  c.send({ op: 'chunk', req, offset: 50, data: Buffer.alloc(50) })
  c.send({ op: 'chunk', req, offset: 0, data: Buffer.alloc(50) })
  c.send({ op: 'end', req })
  t.match(await c.next((m) => m.req === req), { op: 'error', code: 'PXP_ERR_BAD_REQUEST', message: /offset 50, expected 0/ })

  // Too many bytes.
  req = c.req()
  c.send({ op: 'put', req, id: 'y', width: 10, height: 10, mode: 'L', byteLength: 100 })
  c.send({ op: 'chunk', req, offset: 0, data: Buffer.alloc(101) })
  c.send({ op: 'end', req })
  t.match(await c.next((m) => m.req === req), { code: 'PXP_ERR_BYTE_COUNT' })

  // Too few bytes at end.
  req = c.req()
  c.send({ op: 'put', req, id: 'z', width: 10, height: 10, mode: 'L', byteLength: 100 })
  c.send({ op: 'chunk', req, offset: 0, data: Buffer.alloc(99) })
  c.send({ op: 'end', req })
  t.match(await c.next((m) => m.req === req), { code: 'PXP_ERR_BYTE_COUNT' })

  // byteLength that does not match the spec, and a header without data or byteLength.
  t.match(await c.request({ op: 'put', id: 'w', width: 10, height: 10, mode: 'L', byteLength: 99 }), { code: 'PXP_ERR_BYTE_COUNT' })
  t.match(await c.request({ op: 'put', id: 'w', width: 10, height: 10, mode: 'L' }), { code: 'PXP_ERR_VALIDATION' })
  t.match(await c.request({ op: 'put', id: 'w', width: 10, height: 10, mode: 'L', byteLength: 99, data: Buffer.alloc(100) }), { code: 'PXP_ERR_BYTE_COUNT' })

  // The connection is fine afterwards, and nothing leaked.
  t.same((await c.request({ op: 'list' })).images, [])
  t.equal(server.store.stats().used, used)
  t.same(c.messages, [], 'no stray replies to dropped chunks')
})

t.test('a chunked upload is limited per connection, and cancel or disconnect gives its memory back', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: CHUNK })
  const serverSocket = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const before = server.store.stats()
  const welcome = await c.request({ op: 'hello', protocol: 1 })
  const max = welcome.limits.maxUploads as number
  const reqs: number[] = []
  for (let i = 0; i < max; i++) {
    const req = c.req()
    reqs.push(req)
    c.send({ op: 'put', req, id: `u${i}`, width: 100, height: 100, mode: 'L', byteLength: 10000 })
  }
  t.match(await c.request({ op: 'put', id: 'over', width: 100, height: 100, mode: 'L', byteLength: 10000 }), { code: 'PXP_ERR_TOO_MANY_UPLOADS' })
  t.ok(server.store.stats().used > before.used, 'uploads hold reserved memory')
  c.send({ op: 'cancel', req: reqs[0] })
  t.match(await c.next((m) => m.req === reqs[0]), { code: 'PXP_ERR_ABORTED' })
  const serverSide = await serverSocket
  const gone = once(serverSide, 'close')
  c.ws.terminate()
  await gone
  t.equal(server.store.stats().used, before.used, 'every reserved byte is back')
  t.equal(server.store.size, 0)
})
