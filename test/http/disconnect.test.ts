/**
 * Clients that go away: a half-sent upload leaves nothing behind, a half-read download lets go of its
 * snapshot.
 */
import http from 'node:http'
import t from 'tap'
import type { PixelportServer } from '../../server/server.js'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, storeState, upload } from '../helpers/http.js'
import { until } from '../helpers/until.js'

/** The next request the server receives: when it arrived, and when the server closed its response. */
function nextRequest (server: PixelportServer): { arrived: Promise<void>, closed: Promise<void> } {
  let arrived!: () => void
  const arrivedP = new Promise<void>((resolve) => { arrived = resolve })
  const closed = new Promise<void>((resolve) => {
    server.app.server.once('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      arrived()
      res.once('close', () => resolve())
    })
  })
  return { arrived: arrivedP, closed }
}

/** Start a request that declares `declared` bytes (or goes chunked), send `sent` of them, and return it. */
function partialUpload (url: string, method: string, path: string, sent: Uint8Array, declared?: number): http.ClientRequest {
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' }
  if (declared !== undefined) headers['content-length'] = declared
  const req = http.request(url + path, { method, headers, agent: false })
  req.on('error', () => {})
  req.write(sent)
  return req
}

t.test('a client that disconnects mid-upload leaves nothing behind', async (t) => {
  const { url, server } = await startServer(t)
  await upload(url, { width: 8, height: 8, mode: 'L', id: 'other' }, new Uint8Array(64))
  const before = storeState(server)
  const size = 512 * 512 * 3
  for (const declared of [size, undefined]) {
    const { closed } = nextRequest(server)
    const req = partialUpload(url, 'POST', '/images?width=512&height=512&mode=RGB&id=cam%2Fhalf', randomBytes(size / 2), declared)
    // The server has reserved the memory and is receiving into it...
    await until(() => server.store.stats().used > before.stats.used, { what: 'the upload to start' })
    t.equal(server.store.has('cam/half'), false, 'an upload in progress is invisible')
    t.equal((await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L', id: 'cam/half' })).status, 409, 'its id is taken meanwhile')
    // ...when the client vanishes.
    req.destroy()
    await closed
    await until(() => server.store.stats().used === before.stats.used, { what: 'the reservation to be returned' })
    t.same(storeState(server), before, `${declared === undefined ? 'chunked' : 'Content-Length'}: store as it was`)
  }
  const again = await upload(url, { width: 512, height: 512, mode: 'RGB', id: 'cam/half' }, randomBytes(size))
  t.equal(again.status, 201, 'the id and the memory are free again')
})

t.test('a client that disconnects mid-PUT changes nothing and holds no lock', async (t) => {
  const { url, server } = await startServer(t)
  const size = 256 * 256 * 4
  const original = randomBytes(size)
  await upload(url, { width: 256, height: 256, mode: 'RGBA', id: 'p' }, original)
  const before = storeState(server)
  const { arrived, closed } = nextRequest(server)
  const req = partialUpload(url, 'PUT', '/images/p/data', randomBytes(size / 4), size)
  await arrived
  req.destroy()
  await closed
  t.same(storeState(server), before)
  const back = await download(url, 'p')
  t.equal(back.headers.get('x-pixelport-generation'), '0')
  t.ok(Buffer.from(back.bytes).equals(original), 'pixels untouched')
  const next = randomBytes(size)
  const written = await put(url, 'p', next)
  t.equal(written.status, 200, 'the next writer gets the lock at once')
  t.equal(written.body.generation, 1)
})

t.test('a client that stops reading a download releases its snapshot', async (t) => {
  const size = 1024 * 1024 * 4
  // Room for one snapshot: if the abandoned download kept its snapshot, the next generation could not be copied.
  const { url, server } = await startServer(t, { snapshotBytes: size + 1024, capacity: 32 * 1024 * 1024 })
  await upload(url, { width: 1024, height: 1024, mode: 'RGBA', id: 'd' }, randomBytes(size))
  for (let round = 1; round <= 3; round++) {
    const { closed } = nextRequest(server)
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${url}/images/d/data`, { agent: false }, (res) => {
        t.equal(res.statusCode, 200)
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET') reject(err) })
    })
    await closed
    t.equal((await put(url, 'd', randomBytes(size))).status, 200)
    const res = await download(url, 'd')
    t.equal(res.status, 200, `round ${round}: the new generation can be snapshotted`)
    t.equal(res.headers.get('x-pixelport-generation'), String(round))
  }
  t.equal(server.snapshots.stats().bytes, size)
})
