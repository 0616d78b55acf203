/**
 * Issue 12, item 7e: on shutdown, every WebSocket request in flight is answered before the close 1001, as
 * docs/protocol.md §6.1 and §9 say: a `get` already streaming gets `error {req, stream, PXP_ERR_CLOSED}`
 * instead of its remaining chunks, a queued `get` gets `error {req, PXP_ERR_CLOSED}`, and a chunked `put`
 * in progress gets `error {req, PXP_ERR_CLOSED}` (its upload aborted, nothing written).
 */
import t from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { serverSockets, WireClient } from '../helpers/wire-client.js'
import { within } from '../helpers/stalled-upload.js'
import { until } from '../helpers/until.js'

const MiB = 1024 * 1024

t.test('shutdown: gets streaming and queued, and uploads in progress, get PXP_ERR_CLOSED before close 1001', async (t) => {
  const { server, url } = await startServer(t, { capacity: 64 * MiB, blockSize: 32 * MiB, uploadIdleTimeoutMs: 60_000 })
  // 16 MiB: far more than the socket buffers hold, so the stream is still going when shutdown starts.
  server.store.create({ id: 'big', width: 2048, height: 2048, mode: 'RGBA' })
  server.store.create({ id: 'small', width: 64, height: 64, mode: 'RGBA' })
  const c = await WireClient.connect(t, url)
  t.equal((await c.request({ op: 'hello', protocol: PROTOCOL_VERSION })).op, 'welcome')

  const upload = c.req()
  c.send({ op: 'put', req: upload, id: 'small', byteLength: 64 * 64 * 4 })
  c.send({ op: 'chunk', req: upload, offset: 0, data: new Uint8Array(100) })
  await until(() => server.uploads.stats().uploads === 1, { what: 'the upload to be in progress' })

  // Stop reading: the get's stream parks once the server's send buffer is full, the second get waits behind it.
  c.pause()
  const streaming = c.req()
  const queued = c.req()
  c.send({ op: 'get', req: streaming, id: 'big' })
  c.send({ op: 'get', req: queued, id: 'small' })
  await until(() => serverSockets(server).some((s) => s.bufferedAmount > 0), { what: 'the stream to fill the send buffer', timeout: 10_000 })

  const closing = server.close()
  c.resume()
  const closed = await within(c.closed, 10_000, 'the close')
  await closing
  t.same(closed, { code: 1001, reason: 'PXP_ERR_CLOSED' }, 'closed with 1001 going away')

  const frame = c.messages.find((m) => m.op === 'frame' && m.req === streaming)
  t.ok(frame !== undefined, 'the first get had started streaming')
  const errors = c.messages.filter((m) => m.op === 'error')
  t.match(errors.find((m) => m.req === streaming), { code: 'PXP_ERR_CLOSED', stream: frame?.stream }, 'the streaming get: error with its stream number')
  t.notOk(c.messages.some((m) => m.op === 'end' && m.req === streaming), 'and no end')
  t.match(errors.find((m) => m.req === queued), { code: 'PXP_ERR_CLOSED' }, 'the queued get: error')
  t.match(errors.find((m) => m.req === upload), { code: 'PXP_ERR_CLOSED' }, 'the upload: error')
  t.equal(errors.length, 3, 'each told once')
  // Each error comes before the close, and after everything else of its request.
  const last = c.messages[c.messages.length - 1]
  t.equal(last.op, 'error', 'nothing follows the errors')
  t.same(c.invalid, [], 'every message as the schema says')
})
