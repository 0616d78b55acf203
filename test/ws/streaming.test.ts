/**
 * Streaming under load: backpressure against a client that reads nothing, snapshot sharing between
 * concurrent readers, cancellation, and no leaked snapshot however a stream ends.
 */
import { once } from 'node:events'
import { setImmediate as turn } from 'node:timers/promises'
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { nextServerSocket, WireClient, type Msg } from '../helpers/wire-client.js'

const KiB = 1024
const MiB = 1024 * KiB

function fill (n: number, value: number): Buffer {
  return Buffer.alloc(n, value & 0xff)
}

function pattern (n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed + (i >>> 10)) & 0xff
  return b
}

t.test('a client that reads nothing costs bounded memory and does not slow the others', async (t) => {
  const chunkSize = 64 * KiB
  const highWaterMark = 256 * KiB
  const { url, server } = await startServer(t, { chunkSize, highWaterMark })
  const size = 512 * 512 * 4
  server.store.create({ id: 'cam', width: 512, height: 512, mode: 'RGBA' })

  const slowSide = nextServerSocket(server)
  const slow = await WireClient.connect(t, url)
  const slowSocket = await slowSide
  await slow.request({ op: 'subscribe', ids: ['cam'], policy: 'latest', data: true })
  slow.pause()
  const fast = await WireClient.connect(t, url)
  const { sub } = await fast.request({ op: 'subscribe', ids: ['cam'], policy: 'latest', data: true })

  // The fast client reads every frame as it comes and checks it is one consistent generation.
  const frames: Array<{ generation: number, skipped: number }> = []
  const reading = (async () => {
    while (frames.length < 30) {
      const event = await fast.next((m) => m.op === 'event' && m.sub === sub)
      const frame = await fast.next((m) => m.op === 'frame' && m.sub === sub)
      t.equal(frame.generation, event.generation, 'the frame is the event\'s generation')
      const { bytes } = await fast.collect(frame as never)
      if (!bytes.equals(fill(size, frame.generation))) t.fail(`frame ${frame.generation} is torn or wrong`)
      frames.push({ generation: frame.generation, skipped: event.skipped })
    }
  })()

  let maxBuffered = 0
  let maxSnapshotBytes = 0
  let writes = 0
  let done = false
  void reading.then(() => { done = true })
  // The producer commits several generations per event-loop turn, faster than any client can take
  // 1 MiB frames, until the fast client has 30 frames.
  while (!done) {
    for (let i = 0; i < 4; i++) await server.store.write('cam', fill(size, ++writes))
    maxBuffered = Math.max(maxBuffered, slowSocket.bufferedAmount)
    maxSnapshotBytes = Math.max(maxSnapshotBytes, server.snapshots.stats().bytes)
    await turn()
    if (writes > 20000) t.fail('the fast client starved')
  }
  await reading
  t.ok(writes > frames.length, `producer wrote ${writes} generations, the fast client got ${frames.length} frames`)
  t.ok(frames.some((f) => f.skipped > 0), 'the fast client got the latest generations, skipping some')
  t.ok(maxBuffered <= highWaterMark + chunkSize + 16 * KiB, `slow client's server-side buffer peaked at ${maxBuffered} bytes (highWaterMark ${highWaterMark})`)
  // One held by the slow client, two by the fast one (the frame still flushing and the next), and the
  // idle newest kept for the next reader (evicted first when memory is needed).
  t.ok(maxSnapshotBytes <= 4 * size, `snapshot memory peaked at ${maxSnapshotBytes} bytes (${(maxSnapshotBytes / size).toFixed(1)} images)`)
  for (let i = 1; i < frames.length; i++) {
    t.equal(frames[i].generation, frames[i - 1].generation + 1 + frames[i].skipped, 'skipped counts exactly the generations not sent')
  }
  t.equal(slowSocket.readyState, slowSocket.OPEN, 'the slow client is still connected (policy latest never disconnects it)')
  t.same(fast.invalid, [])

  // Once the slow client goes, everything it held is released.
  const gone = once(slowSocket, 'close')
  slow.ws.terminate()
  await gone
  fast.ws.close()
  await fast.closed
  server.store.delete('cam')
  t.same({ snapshots: server.snapshots.stats().snapshots, bytes: server.snapshots.stats().bytes }, { snapshots: 0, bytes: 0 }, 'no snapshot leaked')
})

t.test('a client that disconnects mid-stream leaves no snapshot behind', async (t) => {
  const highWaterMark = 128 * KiB
  const { url, server } = await startServer(t, { chunkSize: 64 * KiB, highWaterMark, blockSize: 16 * MiB })
  // Larger than what loopback socket buffers absorb, so the stream really waits on the client.
  const size = 16 * MiB
  server.store.create({ id: 'big', shape: [4096, 4096], typestr: '|u1' }, pattern(size, 1))

  for (const variant of ['after its first chunk', 'while the server waits for it to read']) {
    const side = nextServerSocket(server)
    const c = await WireClient.connect(t, url)
    const serverSocket = await side
    c.send({ op: 'get', req: 1, id: 'big' })
    await c.next((m) => m.op === 'chunk')
    if (variant !== 'after its first chunk') {
      c.pause()
      // Wait (turn by turn, no timer) until the server holds a full buffer for this client and is waiting.
      while (serverSocket.bufferedAmount < highWaterMark) await turn()
    }
    t.equal(server.snapshots.stats().snapshots, 1, `${variant}: the stream holds its snapshot`)
    const gone = once(serverSocket, 'close')
    c.ws.terminate()
    await gone
  }
  server.store.delete('big')
  const stats = server.snapshots.stats()
  t.same({ snapshots: stats.snapshots, bytes: stats.bytes }, { snapshots: 0, bytes: 0 }, 'every snapshot was released')
})

t.test('eight concurrent readers of one image share one snapshot', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 256 * KiB, capacity: 64 * MiB, blockSize: 16 * MiB })
  const size = 8 * MiB
  const bytes = pattern(size, 5)
  server.store.create({ id: 'shared', shape: [2048, 1024, 4], typestr: '|u1' }, bytes)
  const clients = await Promise.all(Array.from({ length: 8 }, () => WireClient.connect(t, url)))
  for (const c of clients) c.pause()
  const copiesBefore = server.snapshots.stats().copies
  clients.forEach((c) => c.send({ op: 'get', req: 1, id: 'shared' }))
  for (const c of clients) c.resume()
  // Every stream has started (each holds its reference) once every client has its frame header.
  const headers = await Promise.all(clients.map((c) => c.next((m) => m.op === 'frame')))
  const during = server.snapshots.stats()
  t.equal(during.snapshots, 1, 'one snapshot')
  t.equal(during.bytes, size, 'one image worth of snapshot memory')
  t.equal(during.copies - copiesBefore, 1, 'copied once')
  const results = await Promise.all(clients.map((c, i) => c.collect(headers[i] as never)))
  for (const r of results) t.ok(r.bytes.equals(bytes), 'byte-exact')
})

t.test('many clients at once: uploads, downloads and regions all byte-exact', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 16 * KiB })
  const shared = pattern(300 * 200 * 3, 9)
  server.store.create({ id: 'shared', width: 300, height: 200, mode: 'RGB' }, shared)
  const clients = await Promise.all(Array.from({ length: 16 }, () => WireClient.connect(t, url)))
  await Promise.all(clients.map(async (c, i) => {
    const mine = pattern(100 * 80 * 2, i)
    const req = c.req()
    c.send({ op: 'put', req, id: `own/${i}`, shape: [80, 100], typestr: '<u2', byteLength: mine.length })
    for (let off = 0; off < mine.length; off += 5000) c.send({ op: 'chunk', req, offset: off, data: mine.subarray(off, off + 5000) })
    c.send({ op: 'end', req })
    t.equal((await c.next((m) => m.req === req)).op, 'descriptor')
    const [own, whole, region] = await Promise.all([
      c.get(`own/${i}`),
      c.get('shared'),
      c.get('shared', { region: { x: i, y: 2 * i, width: 50, height: 20 } }),
    ])
    t.ok(own.bytes.equals(mine), `client ${i}: own image`)
    t.ok(whole.bytes.equals(shared), `client ${i}: shared image`)
    const expected = Buffer.alloc(50 * 20 * 3)
    for (let r = 0; r < 20; r++) shared.copy(expected, r * 150, ((2 * i + r) * 300 + i) * 3, ((2 * i + r) * 300 + i + 50) * 3)
    t.ok(region.bytes.equals(expected), `client ${i}: region`)
    t.same(c.invalid, [])
  }))
  t.equal(server.store.size, 17)
})

t.test('gets are limited per connection and can be cancelled, queued or mid-stream', async (t) => {
  const highWaterMark = 32 * KiB
  const { url, server } = await startServer(t, { chunkSize: 16 * KiB, highWaterMark, blockSize: 16 * MiB })
  const size = 16 * MiB
  server.store.create({ id: 'x', shape: [4096, 4096], typestr: '|u1' }, pattern(size, 3))
  const side = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const serverSocket = await side
  const { limits } = await c.request({ op: 'hello', protocol: 1 })
  for (let i = 0; i < limits.maxStreams; i++) c.send({ op: 'get', req: 100 + i, id: 'x' })
  c.send({ op: 'get', req: 99, id: 'x' })
  t.match(await c.next((m) => m.req === 99), { op: 'error', code: 'PXP_ERR_TOO_MANY_STREAMS' })
  const frame = await c.next((m) => m.req === 100)
  t.equal(frame.op, 'frame', 'the first get started')
  // Stop reading until the server is blocked on this client, so the stream is surely mid-way.
  c.pause()
  while (serverSocket.bufferedAmount < highWaterMark) await turn()
  c.send({ op: 'cancel', req: 105 })
  c.send({ op: 'cancel', req: 100 })
  c.resume()
  t.match(await c.next((m) => m.req === 105), { op: 'error', code: 'PXP_ERR_ABORTED' }, 'a queued get is dropped')
  let chunks = 0
  for (;;) {
    const m = await c.next((x) => x.stream === frame.stream)
    if (m.op === 'chunk') chunks++
    else {
      t.match(m, { op: 'error', req: 100, code: 'PXP_ERR_ABORTED', stream: frame.stream }, 'the streaming get ends early with its stream number')
      break
    }
  }
  t.ok(chunks < frame.chunks, `after ${chunks} of ${frame.chunks} chunks`)
  // The others are served in order and complete.
  const next = await c.next((m) => m.req === 101)
  t.equal(next.op, 'frame')
  t.equal((await c.collect(next as never)).bytes.length, size)
  c.ws.terminate()
})

t.test('a client that floods requests without reading the replies is no longer read from', async (t) => {
  const highWaterMark = 16 * KiB
  // List pages are cut at about chunkSize bytes: this one holds all 150 descriptors in one reply.
  const chunkSize = 128 * KiB
  const { url, server } = await startServer(t, { highWaterMark, chunkSize })
  // Each `list` reply is about 50 KB: a tiny request, a big answer.
  for (let i = 0; i < 150; i++) server.store.create({ id: `img/${i}`, width: 1, height: 1, mode: 'L' })
  const side = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const serverSocket = await side
  const replySize = (await c.request({ op: 'list' })) && server.store.list().length
  t.equal(replySize, 150)
  c.pause()
  const requests = 400
  for (let i = 0; i < requests; i++) c.send({ op: 'list', req: 1000 + i })
  // The server stops reading once its buffer for this client passes 2 x highWaterMark + chunkSize.
  while (!serverSocket.isPaused) await turn()
  let maxBuffered = 0
  for (let i = 0; i < 50; i++) {
    maxBuffered = Math.max(maxBuffered, serverSocket.bufferedAmount)
    await turn()
  }
  t.ok(maxBuffered < 2 * highWaterMark + chunkSize + 2 * 110 * KiB, `server-side buffer stays at ${maxBuffered} bytes while ~20 MB of replies are owed`)
  c.resume()
  for (let i = 0; i < requests; i++) {
    const reply = await c.next((m) => m.req === 1000 + i)
    if (reply.op !== 'images' || reply.images.length !== 150) t.fail(`reply ${i}`)
  }
  t.pass('every request was answered, in order, once the client read again')
})
