/**
 * Remote clients that vanish mid-transfer, over both transports, seen by everyone else: a partial upload
 * never becomes visible (no event to any subscriber, not listed, an overwritten image keeps its pixels and
 * generation), the memory it reserved or staged comes back, and the write lock is free for the next writer.
 *
 * (test/http/disconnect.test.ts covers the HTTP store state and abandoned downloads; test/ws/streaming.test.ts
 * abandoned WebSocket downloads; test/ws/protocol.test.ts a cut chunked create's memory. This file adds what
 * others observe — events, list, pixels — and the staging memory of a cut WebSocket overwrite.)
 */
import { once } from 'node:events'
import http from 'node:http'
import t from 'tap'
import type { PixelportServer } from '../../server/server.js'
import { recordEvents } from '../helpers/store.js'
import { startServer } from '../helpers/server.js'
import { download, randomBytes, upload } from '../helpers/http.js'
import { nextServerSocket, WireClient } from '../helpers/wire-client.js'
import { until } from '../helpers/until.js'

const SIZE = 256 * 256 * 4

/** A WebSocket subscriber to every event, collecting them as `type:id:generation`. */
async function subscriber (t: Parameters<typeof WireClient.connect>[0], url: string): Promise<{ seen: () => string[] }> {
  const c = await WireClient.connect(t, url)
  t.match(await c.request({ op: 'subscribe' }), { op: 'subscribed' })
  return {
    seen: () => c.messages.filter((m) => m.op === 'event').map((m) => `${m.type}:${m.id}:${m.generation}`),
  }
}

/** Everything others can observe of the store, plus the memory transports hold for uploads. */
function observable (server: PixelportServer): unknown {
  const s = server.store.stats()
  return {
    list: server.store.list().map((d) => `${d.id}@${d.generation}`),
    used: s.used,
    images: s.images,
    retired: s.retired,
    wsStaging: server.app.pixelportWebSocket.stagingBytes,
    snapshots: server.snapshots.stats().snapshots,
  }
}

/** Start an HTTP upload that declares SIZE bytes, send `sent` of them, and wait until the server has it. */
async function cutHttpUpload (server: PixelportServer, url: string, method: 'POST' | 'PUT', path: string, sent: Uint8Array, started: () => boolean): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    server.app.server.once('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.once('close', () => resolve()))
  })
  const req = http.request(url + path, { method, agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': SIZE } })
  req.on('error', () => {})
  req.write(sent)
  await until(started, { what: `the ${method} to reach the server` })
  req.destroy()
  await closed
}

t.test('HTTP: a cut POST or PUT body is seen by no one and changes nothing', async (t) => {
  const { url, server } = await startServer(t)
  const original = randomBytes(SIZE)
  t.equal((await upload(url, { width: 256, height: 256, mode: 'RGBA', id: 'kept' }, original)).status, 201)
  const sub = await subscriber(t, url)
  const events = recordEvents(server.store)
  t.teardown(events.stop)
  const before = observable(server)
  const usedBefore = server.store.stats().used

  // A create: the server reserves memory as the body starts arriving.
  await cutHttpUpload(server, url, 'POST', '/images?width=256&height=256&mode=RGBA&id=partial', randomBytes(SIZE / 2), () => server.store.stats().used > usedBefore)
  // An overwrite: staged off shared memory; nothing to watch for but the request itself, so send most of it.
  let arrived = false
  server.app.server.once('request', () => { arrived = true })
  await cutHttpUpload(server, url, 'PUT', '/images/kept/data', randomBytes(SIZE - 1), () => arrived)

  await until(() => server.store.stats().used === usedBefore, { what: 'the reservation to come back' })
  t.same(observable(server), before, 'list, memory and generations as they were')
  t.same(events.events, [], 'the store announced nothing')
  const back = await download(url, 'kept')
  t.equal(back.headers.get('x-pixelport-generation'), '0')
  t.ok(Buffer.from(back.bytes).equals(original), 'the overwritten image keeps its pixels')
  // The next writer is not blocked by anything the cut PUT held; its event is the first anyone sees.
  t.equal((await server.store.write('kept', randomBytes(SIZE))).generation, 1)
  await until(() => sub.seen().length > 0, { what: 'the subscriber to see the real write' })
  t.same(sub.seen(), ['updated:kept:1'], 'subscribers saw only the completed write')
})

t.test('WebSocket: a cut chunked create or overwrite is seen by no one; staging and reservation come back', async (t) => {
  const chunk = 16 * 1024
  const { url, server } = await startServer(t, { chunkSize: chunk })
  const original = randomBytes(SIZE)
  server.store.create({ id: 'kept', width: 256, height: 256, mode: 'RGBA' }, original)
  const sub = await subscriber(t, url)
  const events = recordEvents(server.store)
  t.teardown(events.stop)
  const before = observable(server)
  const usedBefore = server.store.stats().used

  for (const target of ['create', 'overwrite'] as const) {
    const side = nextServerSocket(server)
    const c = await WireClient.connect(t, url)
    const serverSocket = await side
    const req = c.req()
    if (target === 'create') c.send({ op: 'put', req, id: 'partial', width: 256, height: 256, mode: 'RGBA', byteLength: SIZE })
    else c.send({ op: 'put', req, id: 'kept', byteLength: SIZE })
    const bytes = randomBytes(SIZE)
    // All but the last chunk: the upload is one chunk short of complete when the client vanishes.
    for (let off = 0; off < SIZE - chunk; off += chunk) c.send({ op: 'chunk', req, offset: off, data: bytes.subarray(off, off + chunk) })
    if (target === 'create') await until(() => server.store.stats().used > usedBefore, { what: 'the create to reserve memory' })
    else await until(() => server.app.pixelportWebSocket.stagingBytes === SIZE, { what: 'the overwrite to be staged' })
    t.equal(server.store.has('partial'), false, `${target}: invisible while in progress`)
    t.equal(server.store.generation('kept'), 0, `${target}: nothing committed while in progress`)
    const gone = once(serverSocket, 'close')
    c.ws.terminate()
    await gone
    t.same(observable(server), before, `${target}: list, memory, staging and generations as they were`)
  }
  t.same(events.events, [], 'the store announced nothing')
  t.ok(Buffer.from((await server.store.read('kept')).bytes).equals(original), 'the overwritten image keeps its pixels')
  t.equal((await server.store.write('kept', randomBytes(SIZE))).generation, 1, 'the next writer gets the lock')
  await until(() => sub.seen().length > 0, { what: 'the subscriber to see the real write' })
  t.same(sub.seen(), ['updated:kept:1'], 'subscribers saw only the completed write')
})
