/**
 * `pixelport get` against a cluster node that does not hold the image (issue 18): without a token it asks
 * for the redirect (`Prefer: redirect`) and downloads from the owner directly; with a token (which
 * HttpClient sends to no other origin than the one named) it does not ask, and the node forwards. Real
 * Redis, two real servers.
 */
import type { IncomingMessage } from 'node:http'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import { FORWARDED_HEADER } from '../../server/cluster/keys.js'
import type { ServerOptions } from '../../server/options.js'
import { runCli } from '../helpers/cli.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { startServer, type Started } from '../helpers/server.js'
import { until } from '../helpers/until.js'

const CLUSTER_TOKEN = 'cluster-secret-0123456789abcdef'
const READER = 'reader-token-0123456789abcdef'
const pixels = new Uint8Array(8 * 4).map((_, i) => i * 7)

interface Seen { url: string, prefer?: string, forwarded: boolean, agent?: string }

/** Two nodes, `a` owning `a/img`; every request `a` and `b` receive is recorded. */
async function cluster (t: Test, options: ServerOptions = {}, token?: string): Promise<{ a: Started, b: Started, seen: { a: Seen[], b: Seen[] } }> {
  const redis: TestRedis = await startRedis(t)
  const node = async (nodeId: string): Promise<Started> =>
    await startServer(t, { ...options, cluster: { redis: redis.url, nodeId, heartbeatMs: 100, ttlMs: 1500, ...(token === undefined ? {} : { token }) } })
  const a = await node('node-a')
  const b = await node('node-b')
  a.server.store.create({ id: 'a/img', width: 8, height: 4, mode: 'L' }, pixels)
  await until(async () => {
    const entry = await b.server.cluster!.locate('a/img')
    return entry !== null && entry.node === 'node-a' && b.server.cluster!.isLivePeer(entry)
  }, { what: 'node-b knows node-a owns a/img', interval: 25 })
  const seen: { a: Seen[], b: Seen[] } = { a: [], b: [] }
  for (const [name, started] of [['a', a], ['b', b]] as const) {
    // The Node.js server under fastify: a listener added after listen() sees every request.
    started.server.app.server.on('request', (request: IncomingMessage) => {
      seen[name].push({ url: request.url ?? '', prefer: request.headers.prefer as string | undefined, forwarded: request.headers[FORWARDED_HEADER] !== undefined, agent: request.headers['user-agent'] })
    })
  }
  return { a, b, seen }
}

t.test('without a token, get follows the node\'s redirect to the owner', async (t) => {
  const { b, seen } = await cluster(t)
  const raw = await runCli(b.url, ['get', 'a/img', '-o', '-', '--format', 'raw'])
  t.equal(raw.code, 0, raw.stderr)
  t.same([...raw.stdout], [...pixels], 'the owner\'s bytes')
  t.same(seen.b.map((s) => [s.url, s.prefer]), [['/images/a%2Fimg/data', 'redirect']], 'the node was asked for a redirect')
  t.same(seen.a.map((s) => [s.url, s.forwarded, s.agent]), [['/images/a%2Fimg/data', false, 'pixelport-cli']], 'and the CLI read the owner directly')

  seen.a.length = seen.b.length = 0
  const png = await runCli(b.url, ['get', 'a/img', '-o', '-', '--format', 'png'])
  t.equal(png.code, 0, png.stderr)
  t.same([...(await sharp(png.stdout).extractChannel(0).raw().toBuffer())], [...pixels], 'a picture too')
  t.same(seen.a.map((s) => [s.url, s.forwarded]), [['/images/a%2Fimg.png', false]], 'from the owner directly')

  const missing = await runCli(b.url, ['get', 'no/such', '-o', '-', '--format', 'raw'])
  t.equal(missing.code, 1, 'an image no node has: refused as before')
  t.match(missing.stderr, /PXP_ERR_NOT_FOUND/)
})

t.test('with a token, get does not ask for a redirect: the node forwards, and the download works', async (t) => {
  const tokens: NonNullable<ServerOptions['tokens']> = [
    { token: CLUSTER_TOKEN, scopes: ['admin'], name: 'cluster' },
    { token: READER, scopes: ['read'], name: 'reader' },
  ]
  const { b, seen } = await cluster(t, { tokens }, CLUSTER_TOKEN)
  const raw = await runCli(b.url, ['get', 'a/img', '-o', '-', '--format', 'raw', '--token', READER])
  t.equal(raw.code, 0, raw.stderr)
  t.same([...raw.stdout], [...pixels])
  t.same(seen.b.map((s) => [s.url, s.prefer]), [['/images/a%2Fimg/data', undefined]], 'no redirect asked for')
  t.same(seen.a.map((s) => [s.url, s.forwarded]), [['/images/a%2Fimg/data', true]], 'forwarded by the node')
})
