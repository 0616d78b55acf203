/**
 * Tokens on the WebSocket: in the upgrade's Authorization header, or in the first `hello`, within a deadline.
 */
import t from 'tap'
import { WebSocket } from 'ws'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { RemoteClient } from '../../client/remote/index.js'
import { until } from '../helpers/until.js'
import { startServer } from '../helpers/server.js'
import { WireClient, wsUrl } from '../helpers/wire-client.js'

const READER = 'r'.repeat(32)
const CAM1 = 'c'.repeat(32)
const tokens = [
  { token: READER, scopes: ['read' as const] },
  { token: CAM1, scopes: ['read' as const, 'write' as const], ids: ['cam1/*'] },
]

t.test('WebSocket authentication', async (t) => {
  const { server, url } = await startServer(t, { tokens, authTimeoutMs: 300 })
  server.store.create({ id: 'cam1/a', width: 2, height: 2, mode: 'L' })
  server.store.create({ id: 'cam2/b', width: 2, height: 2, mode: 'L' })

  t.test('hello with a valid token, then requests', async (t) => {
    const c = await WireClient.connect(t, url)
    const welcome = await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: READER })
    t.equal(welcome.op, 'welcome')
    const list = await c.request({ op: 'list' })
    t.equal(list.images.length, 2)
    const denied = await c.request({ op: 'delete', id: 'cam1/a' })
    t.equal(denied.code, 'PXP_ERR_FORBIDDEN', 'read scope cannot delete')
    t.equal(server.store.size, 2)
    t.same(c.invalid, [])
  })

  t.test('a request before hello closes the connection with 4401', async (t) => {
    const c = await WireClient.connect(t, url)
    c.send({ op: 'list', req: 1 })
    const reply = await c.next()
    t.equal(reply.code, 'PXP_ERR_UNAUTHORIZED')
    t.same(await c.closed, { code: 4401, reason: 'PXP_ERR_UNAUTHORIZED' })
  })

  t.test('a wrong token in hello closes with 4401, and says nothing more', async (t) => {
    const c = await WireClient.connect(t, url)
    c.send({ op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: 'x'.repeat(32) })
    const reply = await c.next()
    t.equal(reply.code, 'PXP_ERR_UNAUTHORIZED')
    t.equal((await c.closed).code, 4401)
  })

  t.test('hello without a token when one is required closes with 4401', async (t) => {
    const c = await WireClient.connect(t, url)
    c.send({ op: 'hello', req: 1, protocol: PROTOCOL_VERSION })
    t.equal((await c.closed).code, 4401)
  })

  t.test('silence past the deadline closes with 4401', async (t) => {
    const c = await WireClient.connect(t, url)
    t.equal((await c.closed).code, 4401)
  })

  t.test('the upgrade may carry the token instead', async (t) => {
    const ws = new WebSocket(wsUrl(url), { headers: { authorization: `Bearer ${READER}` } })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const client = await RemoteClient.connect(wsUrl(url), { headers: { authorization: `Bearer ${READER}` } })
    t.teardown(() => client.close())
    t.equal((await client.list()).length, 2, 'no token in hello needed')
    ws.close()
    const bad = new WebSocket(wsUrl(url), { headers: { authorization: `Bearer ${'x'.repeat(32)}` } })
    const status = await new Promise<number>((resolve) => bad.once('unexpected-response', (req, res) => { req.destroy(); resolve(res.statusCode ?? 0) }))
    t.equal(status, 401, 'a wrong header token is refused at the upgrade')
  })

  t.test('RemoteClient { token } and id limits', async (t) => {
    const client = await RemoteClient.connect(wsUrl(url), { token: CAM1 })
    t.teardown(() => client.close())
    t.same((await client.list()).map((d) => d.id), ['cam1/a'], 'the list hides other namespaces')
    await t.rejects(client.describe('cam2/b'), { code: 'PXP_ERR_FORBIDDEN' })
    await t.rejects(client.describe('cam2/none'), { code: 'PXP_ERR_FORBIDDEN' }, 'the same for ids that do not exist')
    await t.rejects(client.get('cam2/b'), { code: 'PXP_ERR_FORBIDDEN' })
    await t.rejects(client.create({ id: 'cam2/new', width: 1, height: 1, mode: 'L' }), { code: 'PXP_ERR_FORBIDDEN' })
    await t.rejects(client.subscribe({ ids: ['cam2/b'] }), { code: 'PXP_ERR_FORBIDDEN' })
    const sub = await client.subscribe({ policy: 'all' })
    server.store.create({ id: 'cam2/hidden', width: 1, height: 1, mode: 'L' })
    server.store.create({ id: 'cam1/shown', width: 1, height: 1, mode: 'L' })
    const first = await sub.next()
    const seen = [first.value?.id]
    await sub.close()
    t.same(seen, ['cam1/shown'], 'events of other namespaces never arrive')
  })
})

t.test('connections per client are limited at the upgrade', async (t) => {
  const { url } = await startServer(t, { maxConnectionsPerClient: 2 })
  const a = await WireClient.connect(t, url)
  await WireClient.connect(t, url)
  const third = new WebSocket(wsUrl(url))
  const res = await new Promise<{ status: number, body: string }>((resolve) => third.once('unexpected-response', (_req, res) => {
    let body = ''
    res.on('data', (b: Buffer) => { body += b.toString() })
    res.on('end', () => { _req.destroy(); resolve({ status: res.statusCode ?? 0, body }) })
  }))
  t.equal(res.status, 429)
  t.equal(JSON.parse(res.body).code, 'PXP_ERR_TOO_MANY_CONNECTIONS')
  a.ws.close()
  await a.closed
  // The slot is given back when a connection closes (the server handles the close on its own schedule).
  await until(async () => {
    const again = new WebSocket(wsUrl(url))
    const opened = await new Promise<boolean>((resolve) => { again.once('open', () => resolve(true)); again.once('unexpected-response', (req) => { req.destroy(); resolve(false) }) })
    if (opened) again.close()
    return opened
  }, { what: 'the closed connection\'s slot to come back' })
  t.pass('a closed connection frees its slot')
})
