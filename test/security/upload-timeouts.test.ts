/**
 * Issue 12, item 3: an upload whose body stops (idle timeout) or never finishes (deadline) is aborted with
 * PXP_ERR_UPLOAD_TIMEOUT on every path: its connection is closed (HTTP), its staging and reserved store
 * memory come back, and the store is as it was (an overwritten image keeps its bytes and generation; a
 * create leaves nothing behind).
 */
import t from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'
import { stallUpload, within } from '../helpers/stalled-upload.js'
import { until } from '../helpers/until.js'

const MiB = 1024 * 1024
const OCTETS = 'application/octet-stream'
const SPEC = { width: 512, height: 512, mode: 'RGBA' }
/** Long enough for the test machine, short enough to wait for. */
const IDLE_MS = 300

t.test('HTTP: a stalled body is aborted after the idle timeout and the store is as it was', async (t) => {
  const { server, url } = await startServer(t, { uploadIdleTimeoutMs: IDLE_MS })
  const old = new Uint8Array(MiB).fill(42)
  server.store.create({ id: 'a', ...SPEC }, old)
  await server.store.write('a', old)
  const generation = server.store.generation('a')
  const usedBefore = server.store.stats().used

  const cases = [
    { name: 'PUT overwrite', method: 'PUT', path: '/images/a/data', contentType: OCTETS, length: MiB, send: new Uint8Array(MiB / 2).fill(1) },
    { name: 'raw POST create', method: 'POST', path: '/images?id=b&width=512&height=512&mode=RGBA', contentType: OCTETS, length: MiB, send: new Uint8Array(MiB / 2).fill(1) },
    { name: 'picture POST', method: 'POST', path: '/images?id=c', contentType: 'image/png', length: MiB, send: Buffer.from('\x89PNG\r\n\x1a\n', 'latin1') },
    { name: 'chunked picture POST', method: 'POST', path: '/images?id=d', contentType: 'image/png', send: Buffer.from('\x89PNG\r\n\x1a\n', 'latin1') },
  ]
  const stalled = await Promise.all(cases.map(async (c) => ({ c, s: await stallUpload(t, url, c) })))
  await until(() => server.uploads.stats().uploads === cases.length, { what: 'every upload in progress' })
  for (const { c, s } of stalled) {
    const answer = await within(s.answer, 10 * IDLE_MS + 5000, `${c.name}: the server to answer and close`)
    t.equal(answer.status, 408, `${c.name}: 408`)
    t.equal(answer.json?.code, 'PXP_ERR_UPLOAD_TIMEOUT', `${c.name}: named error`)
    t.match(answer.json?.message, /no bytes received for 300 ms/)
    t.equal(answer.headers.connection, 'close', `${c.name}: the connection is closed`)
  }
  t.match(server.uploads.stats(), { uploads: 0, bytes: 0 }, 'no staging held')
  t.equal(server.store.stats().used, usedBefore, 'store memory back to baseline (the create gave back its reservation)')
  t.same(server.store.ids().sort(), ['a'], 'nothing created')
  t.equal(server.store.generation('a'), generation, 'the overwritten image kept its generation')
  t.same(Buffer.from((await server.store.read('a')).bytes), Buffer.from(old), 'and its bytes')
})

t.test('HTTP: a body still trickling after the deadline is aborted', async (t) => {
  const { server, url } = await startServer(t, { uploadIdleTimeoutMs: 60_000, uploadDeadlineMs: 400 })
  server.store.create({ id: 'a', ...SPEC })
  const s = await stallUpload(t, url, { method: 'PUT', path: '/images/a/data', contentType: OCTETS, length: MiB, send: new Uint8Array(100) })
  // A slow client: a byte every 20 ms keeps the idle clock from ever firing.
  const trickle = setInterval(() => s.write(new Uint8Array(1)), 20)
  t.teardown(() => clearInterval(trickle))
  const answer = await within(s.answer, 10_000, 'the deadline to cut the upload')
  clearInterval(trickle)
  t.equal(answer.status, 408)
  t.equal(answer.json?.code, 'PXP_ERR_UPLOAD_TIMEOUT')
  t.match(answer.json?.message, /not complete after 400 ms \(uploadDeadlineMs\)/)
  t.equal(server.store.generation('a'), 0)
  t.equal(server.uploads.stats().bytes, 0)
})

t.test('HTTP: an upload that keeps sending is not cut by the idle timeout, however long it takes', async (t) => {
  const { server, url } = await startServer(t, { uploadIdleTimeoutMs: IDLE_MS })
  server.store.create({ id: 'a', ...SPEC })
  const aborted: unknown[] = []
  server.uploads.on('aborted', (u) => aborted.push(u))
  const s = await stallUpload(t, url, { method: 'PUT', path: '/images/a/data', contentType: OCTETS, length: MiB, send: new Uint8Array(0) })
  // A slow client, not a synchronisation: four pieces, each well inside the idle timeout of the one before,
  // together taking twice as long as the timeout.
  let sent = 0
  const pace = setInterval(() => {
    s.write(new Uint8Array(MiB / 4).fill(9))
    if (++sent === 4) clearInterval(pace)
  }, IDLE_MS / 2)
  t.teardown(() => clearInterval(pace))
  await until(() => server.store.generation('a') === 1, { what: 'the upload to commit', timeout: 10_000 })
  t.same(aborted, [], 'never aborted')
  t.equal((await server.store.read('a')).bytes[0], 9)
})

t.test('WebSocket: a chunked put whose chunks stop is aborted with an error, and the connection goes on', async (t) => {
  const { server, url } = await startServer(t, { uploadIdleTimeoutMs: IDLE_MS })
  const old = new Uint8Array(MiB).fill(42)
  server.store.create({ id: 'a', ...SPEC }, old)
  const usedBefore = server.store.stats().used
  const c = await WireClient.connect(t, url)
  t.equal((await c.request({ op: 'hello', protocol: PROTOCOL_VERSION })).op, 'welcome')

  for (const target of ['overwrite', 'create'] as const) {
    const req = c.req()
    c.send({ op: 'put', req, ...(target === 'overwrite' ? { id: 'a' } : { id: 'b', ...SPEC }), byteLength: MiB })
    c.send({ op: 'chunk', req, offset: 0, data: new Uint8Array(MiB / 2).fill(1) })
    await until(() => server.uploads.stats().uploads === 1, { what: `${target}: in progress` })
    const error = await within(c.next((m) => m.req === req), 10 * IDLE_MS + 5000, `${target}: the server to give up`)
    t.match(error, { op: 'error', req, code: 'PXP_ERR_UPLOAD_TIMEOUT' }, `${target}: told why`)
    t.same(server.uploads.stats().bytes, 0, `${target}: staging given back`)
    // Late chunks of the aborted upload are dropped quietly; the connection still serves.
    c.send({ op: 'chunk', req, offset: MiB / 2, data: new Uint8Array(MiB / 2) })
    c.send({ op: 'end', req })
    t.equal((await c.request({ op: 'describe', id: 'a' })).op, 'descriptor', `${target}: the connection goes on`)
  }
  t.equal(server.store.generation('a'), 0, 'the overwritten image kept its generation')
  t.same(Buffer.from((await server.store.read('a')).bytes), Buffer.from(old), 'and its bytes')
  t.equal(server.store.has('b'), false, 'the create left nothing')
  t.equal(server.store.stats().used, usedBefore, 'store memory back to baseline')
  t.same(c.invalid, [])
})

t.test('options are validated with messages that name them', async (t) => {
  for (const [name, value] of [['stagingBudgetBytes', 0], ['uploadIdleTimeoutMs', -1], ['uploadDeadlineMs', 2 ** 32], ['uploadIdleTimeoutMs', 1.5]] as const) {
    await t.rejects(startServer(t, { [name]: value }), { code: 'PXP_ERR_VALIDATION', message: new RegExp(name) }, `${name} = ${value}`)
  }
  // The default budget fits the largest image the server accepts, and is never below 256 MiB.
  t.equal((await startServer(t)).server.uploads.stats().maxBytes, 1024 * MiB, 'default: maxImageBytes (1 GiB)')
  t.equal((await startServer(t, { maxImageBytes: 16 * MiB })).server.uploads.stats().maxBytes, 256 * MiB, 'default: at least 256 MiB')
  t.equal((await startServer(t, { stagingBudgetBytes: 3 * MiB })).server.uploads.stats().maxBytes, 3 * MiB, 'or as set')
})
