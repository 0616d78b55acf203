/**
 * Issue 12, item 3: one staging budget for every upload path. Stalled uploads on HTTP PUT, raw POST,
 * picture POST and WebSocket put together hold at most `stagingBudgetBytes`; the next upload on any path
 * is refused at once with PXP_ERR_STAGING_FULL (HTTP 503 + Retry-After), and whatever a vanished client
 * held comes back.
 */
import t from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { rawRequest } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'
import { stallUpload, within, type StalledUpload } from '../helpers/stalled-upload.js'
import { until } from '../helpers/until.js'

const MiB = 1024 * 1024
const OCTETS = 'application/octet-stream'
/** 512 × 512 RGBA: 1 MiB. */
const SPEC = { width: 512, height: 512, mode: 'RGBA' }

t.test('stalled uploads on every path share one budget; the next is refused at once; all comes back', async (t) => {
  const { server, url } = await startServer(t, { stagingBudgetBytes: 4 * MiB, uploadIdleTimeoutMs: 60_000 })
  server.store.create({ id: 'a', ...SPEC })
  server.store.create({ id: 'w', ...SPEC })
  const usedBefore = server.store.stats().used

  // One stalled upload per path, each declaring 1 MiB and sending a little of it.
  const stalled: StalledUpload[] = [
    await stallUpload(t, url, { method: 'PUT', path: '/images/a/data', contentType: OCTETS, length: MiB, send: new Uint8Array(1000).fill(7) }),
    await stallUpload(t, url, { method: 'POST', path: '/images?id=b&width=512&height=512&mode=RGBA', contentType: OCTETS, length: MiB, send: new Uint8Array(1000) }),
    await stallUpload(t, url, { method: 'POST', path: '/images?id=c', contentType: 'image/png', length: MiB, send: Buffer.from('\x89PNG\r\n\x1a\n', 'latin1') }),
  ]
  const ws = await WireClient.connect(t, url)
  t.equal((await ws.request({ op: 'hello', protocol: PROTOCOL_VERSION })).op, 'welcome')
  const wsReq = ws.req()
  ws.send({ op: 'put', req: wsReq, id: 'w', byteLength: MiB })
  ws.send({ op: 'chunk', req: wsReq, offset: 0, data: new Uint8Array(1000) })
  await until(() => server.uploads.stats().uploads === 4, { what: 'four uploads in progress' })
  t.same(server.uploads.stats(), { uploads: 4, bytes: 4 * MiB, maxBytes: 4 * MiB }, 'each holds its share')
  t.equal(server.app.pixelportWebSocket.stagingBytes, MiB, 'the WebSocket put holds its share of the same budget')

  // The next upload on every path: refused before its body is read.
  const put = await within(rawRequest(url, { method: 'PUT', path: '/images/a/data', headers: { 'content-type': OCTETS, 'content-length': MiB }, body: new Uint8Array(10) }), 5000, 'PUT refused')
  t.equal(put.status, 503)
  t.equal(JSON.parse(put.body.toString()).code, 'PXP_ERR_STAGING_FULL')
  t.equal(put.headers['retry-after'], '1', 'worth retrying later')
  const post = await within(rawRequest(url, { method: 'POST', path: '/images?id=d&width=512&height=512&mode=RGBA', headers: { 'content-type': OCTETS, 'content-length': MiB }, body: new Uint8Array(10) }), 5000, 'POST refused')
  t.match({ status: post.status, code: JSON.parse(post.body.toString()).code }, { status: 503, code: 'PXP_ERR_STAGING_FULL' })
  const picture = await within(rawRequest(url, { method: 'POST', path: '/images?id=e', headers: { 'content-type': 'image/png', 'content-length': 5000 }, body: new Uint8Array(10) }), 5000, 'picture refused')
  t.match({ status: picture.status, code: JSON.parse(picture.body.toString()).code }, { status: 503, code: 'PXP_ERR_STAGING_FULL' })
  for (const id of ['w', 'f']) {
    const reply = await ws.request({ op: 'put', id, ...(id === 'f' ? SPEC : {}), byteLength: MiB })
    t.match(reply, { op: 'error', code: 'PXP_ERR_STAGING_FULL' }, `WebSocket put (${id === 'w' ? 'overwrite' : 'create'}) refused`)
  }
  t.equal(server.store.has('d') || server.store.has('e') || server.store.has('f'), false, 'nothing created by the refused uploads')
  t.equal(server.store.has('b'), false, 'the stalled create is invisible')
  t.equal(server.uploads.stats().bytes, 4 * MiB, 'the refusals took nothing')

  // The clients vanish: everything they held comes back, and the images are as they were.
  for (const s of stalled) s.socket.destroy()
  ws.ws.terminate()
  await until(() => server.uploads.stats().uploads === 0, { what: 'every upload to end' })
  t.same(server.uploads.stats(), { uploads: 0, bytes: 0, maxBytes: 4 * MiB }, 'budget back to zero')
  t.equal(server.store.stats().used, usedBefore, 'store memory back to baseline')
  t.equal(server.store.generation('a'), 0, 'the overwritten image kept its generation')
  t.equal(server.store.has('b'), false)

  // Room again.
  const ok = await fetch(`${url}/images/a/data`, { method: 'PUT', headers: { 'content-type': OCTETS }, body: new Uint8Array(MiB).fill(1) })
  t.equal(ok.status, 200)
  t.equal(server.store.generation('a'), 1)
})

t.test('16 stalled PUTs cannot grow the server past the budget', async (t) => {
  const SIZE = 4 * MiB
  const { server, url } = await startServer(t, { stagingBudgetBytes: 2 * SIZE, uploadIdleTimeoutMs: 60_000, capacity: 128 * MiB })
  for (let i = 0; i < 16; i++) server.store.create({ id: `img${i}`, width: 1024, height: 1024, mode: 'RGBA' })
  // One payload for every client (allocated before the measurement): only the server's memory is measured.
  const payload = new Uint8Array(SIZE - 64 * 1024)
  const before = process.memoryUsage().arrayBuffers
  const answers: Array<Promise<unknown>> = []
  let refused = 0
  for (let i = 0; i < 16; i++) {
    const s = await stallUpload(t, url, { method: 'PUT', path: `/images/img${i}/data`, contentType: OCTETS, length: SIZE, send: payload })
    answers.push(s.answer.then((a) => { if (a.json?.code === 'PXP_ERR_STAGING_FULL') refused++ }))
  }
  await until(() => server.uploads.stats().uploads === 2 && refused === 14, { what: 'two uploads staged and fourteen refused', timeout: 10_000 })
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 8 * SIZE, `staging memory grew by ${(grown / MiB).toFixed(1)} MiB, not by 16 × ${SIZE / MiB} MiB`)
  t.equal(server.uploads.stats().bytes, 2 * SIZE)
})

t.test('an upload larger than the whole budget is refused for good; a chunked picture grows its share', async (t) => {
  const { server, url } = await startServer(t, { stagingBudgetBytes: MiB, uploadIdleTimeoutMs: 60_000 })
  server.store.create({ id: 'big', width: 1024, height: 1024, mode: 'RGBA' })
  const res = await rawRequest(url, { method: 'PUT', path: '/images/big/data', headers: { 'content-type': OCTETS, 'content-length': 4 * MiB }, body: new Uint8Array(10) })
  const body = JSON.parse(res.body.toString())
  t.equal(res.status, 503)
  t.equal(body.code, 'PXP_ERR_STAGING_FULL')
  t.match(body.message, /larger than the whole budget.*stagingBudgetBytes/)
  t.equal(res.headers['retry-after'], undefined, 'no Retry-After: waiting will not help')

  // No Content-Length: the picture's share grows as its bytes arrive, and is refused when it passes the budget.
  const s = await stallUpload(t, url, { method: 'POST', path: '/images?id=pic', contentType: 'image/png', send: new Uint8Array(MiB / 2) })
  await until(() => server.uploads.stats().bytes === MiB / 2, { what: 'half the budget held' })
  s.write(new Uint8Array(MiB))
  const answer = await within(s.answer, 5000, 'chunked picture refused')
  t.equal(answer.status, 503)
  t.equal(answer.json?.code, 'PXP_ERR_STAGING_FULL')
  await until(() => server.uploads.stats().uploads === 0, { what: 'the refused picture to end' })
  t.equal(server.uploads.stats().bytes, 0)
})
