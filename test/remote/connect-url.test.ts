/**
 * RemoteClient.connect takes the URL everything else takes (http(s)://host:port, or the ws(s)://…/ws
 * endpoint) with the token as an option, and `scope: 'cluster'` as an option of the client, of list and
 * of subscribe. `pixelport ls --cluster` reads the same catalog.
 */
import t from 'tap'
import { RemoteClient, socketUrlOf } from '../../client/remote/index.js'
import { runCli } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/until.js'

t.test('socketUrlOf: the /ws endpoint under any base URL', async (t) => {
  t.equal(socketUrlOf('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/ws')
  t.equal(socketUrlOf('http://127.0.0.1:8080/'), 'ws://127.0.0.1:8080/ws')
  t.equal(socketUrlOf('https://pixels.example/base/'), 'wss://pixels.example/base/ws')
  t.equal(socketUrlOf(new URL('https://pixels.example')), 'wss://pixels.example/ws')
  t.equal(socketUrlOf('ws://h:1/ws'), 'ws://h:1/ws', 'an endpoint stays as it is')
  t.equal(socketUrlOf('wss://h'), 'wss://h/ws')
  t.equal(socketUrlOf('http://h/ws'), 'ws://h/ws')
  t.throws(() => socketUrlOf('ftp://h'), { code: 'PXP_ERR_BAD_REQUEST', message: /unsupported URL scheme ftp:/ })
  t.throws(() => socketUrlOf('not a url'), { code: 'PXP_ERR_BAD_REQUEST', message: /not a URL/ })
})

t.test('connect(http URL, { token }) and connect(ws URL) reach the same server', async (t) => {
  const token = 'remote-token-0123456789'
  const { url, server } = await startServer(t, { tokens: [{ token, scopes: ['read', 'write'] }] })
  server.store.create({ id: 'seen', width: 2, height: 2, mode: 'L' })
  for (const target of [url, url + '/', url.replace(/^http/, 'ws') + '/ws']) {
    const client = await RemoteClient.connect(target, { token })
    t.same((await client.list()).map((d) => d.id), ['seen'], target)
    await client.close()
  }
  await t.rejects(RemoteClient.connect(url, { token: 'not-this-servers-token' }), { code: 'PXP_ERR_UNAUTHORIZED' })
})

t.test("scope: 'cluster' for list and subscribe, on the client or per call; ls --cluster", async (t) => {
  const redis = await startRedis(t)
  const cluster = { redis: redis.url, heartbeatMs: 100, ttlMs: 1500 }
  const a = await startServer(t, { cluster: { ...cluster, nodeId: 'node-a' } })
  const b = await startServer(t, { cluster: { ...cluster, nodeId: 'node-b' } })
  b.server.store.create({ id: 'far/one', width: 2, height: 2, mode: 'L' })
  const client = await RemoteClient.connect(a.url, { scope: 'cluster' })
  t.teardown(() => client.close())
  const listed = await until(async () => (await client.list()).find((d) => d.id === 'far/one'), { what: 'node-b\'s image listed through node-a' })
  t.equal((listed as { node?: string }).node, 'node-b')
  t.same(await client.list({ scope: 'local' }), [], 'a call can ask for this node only')

  const subscription = await client.subscribe({ ids: ['far/two'] })
  b.server.store.create({ id: 'far/two', width: 2, height: 2, mode: 'L' })
  const { value } = await subscription.next()
  t.match(value, { type: 'created', id: 'far/two' }, 'an event of another node\'s image')
  await subscription.return()

  const ls = await runCli(a.url, ['ls', '--cluster'])
  t.equal(ls.code, 0, ls.stderr)
  t.match(ls.stdout.toString(), /^ID\s+NODE\s+SHAPE\s+TYPE\s+MODE\s+SIZE\s+GENERATION\s+LAYOUT\n/)
  t.match(ls.stdout.toString(), /\nfar\/one\s+node-b\s+\(2, 2\)\s+\|u1\s+L\s+2x2\s+0\s+block\n/)
  t.notMatch((await runCli(a.url, ['ls'])).stdout.toString(), /far\//, 'plain ls: this node only')
})
