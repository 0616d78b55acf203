/**
 * Three real nodes (in-process servers) in a cluster over a real redis-server: cross-node listing, events
 * reaching another node's subscribers in order, reads and writes through a node that does not own the
 * image, and the refusals and errors that go with them.
 */
import t, { type Test } from 'tap'
import type { ClusterDescriptor, ClusterNodeStatus } from '../../server/cluster/node.js'
import type { ServerOptions } from '../../server/options.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { startServer, type Started } from '../helpers/server.js'
import { WireClient, type Msg } from '../helpers/wire-client.js'
import { until } from '../helpers/until.js'

// A short heartbeat keeps the tests quick; the TTL leaves room for a loaded machine's stalls (a node
// whose heartbeat lapses is dropped by the others until its next beat).
const CLUSTER = { heartbeatMs: 100, ttlMs: 1500 }

t.jobs = 2

async function node (t: Test, redis: TestRedis, nodeId: string, extra: ServerOptions = {}): Promise<Started> {
  return await startServer(t, { ...extra, cluster: { redis: redis.url, nodeId, ...CLUSTER } })
}

async function json<T = unknown> (url: string, init?: RequestInit): Promise<{ status: number, body: T, headers: Headers }> {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.json() as T, headers: res.headers }
}

async function clusterIds (url: string): Promise<string[]> {
  const { body } = await json<{ images: ClusterDescriptor[] }>(`${url}/images?scope=cluster`)
  return body.images.map((d) => `${d.node}:${d.id}`).sort()
}

function pixels (n: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(n)
  for (let i = 0; i < n; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

t.test('three nodes: one catalog, listed from any node; membership in GET /cluster', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  const c = await node(t, redis, 'node-c')
  a.server.store.create({ id: 'cam/a1', width: 8, height: 4, mode: 'L' })
  b.server.store.create({ id: 'cam/b1', width: 2, height: 2, mode: 'RGB' })
  const want = ['node-a:cam/a1', 'node-b:cam/b1']
  for (const n of [a, b, c]) {
    t.same(await until(async () => {
      const ids = await clusterIds(n.url)
      return JSON.stringify(ids) === JSON.stringify(want) ? ids : undefined
    }, { what: 'every image listed' }), want, `${n.server.cluster!.nodeId} lists both nodes' images`)
  }
  const { body } = await json<{ images: ClusterDescriptor[], partial: boolean }>(`${c.url}/images?scope=cluster`)
  t.equal(body.partial, false)
  const a1 = body.images.find((d) => d.id === 'cam/a1')!
  t.equal(a1.url, a.url, 'url is the owner\'s advertised URL')
  t.same(a1.shape, [4, 8], 'the owner\'s descriptor')
  t.same((await json<{ images: unknown[] }>(`${c.url}/images`)).body.images, [], 'default scope stays local')

  const status = (await json<ClusterNodeStatus>(`${b.url}/cluster`)).body
  t.same(status.nodes.map((n) => [n.id, n.url, n.images, n.self]), [
    ['node-a', a.url, 1, false], ['node-b', b.url, 1, true], ['node-c', c.url, 0, false],
  ])
  t.equal(status.redis.status, 'ready')
  t.ok(status.nodes.every((n) => n.lastSeen > Date.now() - 5000))

  const ws = await WireClient.connect(t, c.url)
  const listed = await ws.request({ op: 'list', scope: 'cluster' })
  t.same(listed.images.map((d: ClusterDescriptor) => `${d.node}:${d.id}`).sort(), want, 'WebSocket list { scope: cluster }')
  t.same((await ws.request({ op: 'list' })).images, [], 'WebSocket list defaults to local')
  t.same(ws.invalid, [], 'every message matches its schema')

  // A node that closes leaves at once (no waiting for its heartbeat to lapse).
  await b.server.close()
  t.same(await clusterIds(a.url), ['node-a:cam/a1'], 'gone from the listing as soon as close() resolved')
})

t.test('events of node A reach a cluster-scope subscriber on node B, in order per image', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  const ws = await WireClient.connect(t, b.url)
  const all = await ws.request({ op: 'subscribe', scope: 'cluster', policy: 'all', queue: 4096 })
  const local = await ws.request({ op: 'subscribe' })
  t.equal(all.op, 'subscribed')

  const COMMITS = 40
  const image = a.server.store.create({ id: 'stream/x', width: 16, height: 16, mode: 'L' })
  for (let g = 1; g <= COMMITS; g++) {
    await a.server.store.write(image.id, pixels(256, g))
    if (g % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  a.server.store.delete(image.id)
  b.server.store.create({ id: 'here', width: 1, height: 1, mode: 'L' })

  const events: Msg[] = []
  for (;;) {
    const m = await ws.next((m) => m.op === 'event' && m.sub === all.sub && m.id === 'stream/x')
    events.push(m)
    if (m.type === 'deleted') break
  }
  t.equal(events[0].type, 'created', 'created first')
  t.equal(events.at(-1)!.type, 'deleted', 'deleted last')
  const generations = events.slice(1, -1).map((m) => m.generation as number)
  t.ok(generations.every((g, i) => i === 0 || g > generations[i - 1]), `updates in commit order: ${generations.join(',')}`)
  t.equal(generations.at(-1), COMMITS, 'the last commit is never coalesced away')
  t.ok(events.every((m) => m.descriptor.node === 'node-a' && m.descriptor.url === a.url), 'remote events name the owner')
  t.ok(generations.length <= COMMITS, 'updates may be coalesced, never duplicated')

  const mine = await ws.next((m) => m.op === 'event' && m.sub === all.sub && m.id === 'here')
  t.equal(mine.descriptor.node, 'node-b', 'local events in cluster scope name this node')
  const plain = await ws.next((m) => m.op === 'event' && m.sub === local.sub)
  t.equal(plain.id, 'here', 'a local-scope subscription hears only local images')
  t.notOk(ws.messages.some((m) => m.op === 'event' && m.sub === local.sub && m.id === 'stream/x'))
  t.same(ws.invalid, [])
})

t.test('reads and writes through a node that does not own the image are streamed to and from the owner', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  const W = 512
  const H = 300
  const bytes = pixels(W * H * 3, 7)
  a.server.store.create({ id: 'big', width: W, height: H, mode: 'RGB' }, bytes)
  b.server.store.create({ id: 'mine', width: 1, height: 1, mode: 'L' })
  await until(async () => (await b.server.cluster!.locate('big')) ?? undefined, { what: 'B knows the owner' })

  const data = await fetch(`${b.url}/images/big/data`)
  t.equal(data.status, 200)
  t.equal(data.headers.get('x-pixelport-node'), 'node-a')
  t.equal(data.headers.get('x-pixelport-shape'), `${H},${W},3`, 'the owner\'s headers come through')
  t.ok(Buffer.from(await data.arrayBuffer()).equals(Buffer.from(bytes)), 'bytes equal the owner\'s')

  const range = await fetch(`${b.url}/images/big/data`, { headers: { range: 'bytes=10-19' } })
  t.equal(range.status, 206)
  t.ok(Buffer.from(await range.arrayBuffer()).equals(Buffer.from(bytes.subarray(10, 20))), 'Range is forwarded')

  const described = await json<ClusterDescriptor>(`${b.url}/images/big`)
  t.equal(described.status, 200)
  t.equal(described.body.node, 'node-a')
  t.equal(described.body.url, a.url)
  t.equal(described.headers.get('etag'), '"0"')
  const notModified = await fetch(`${b.url}/images/big`, { headers: { 'if-none-match': '"0"' } })
  t.equal(notModified.status, 304, 'conditional requests are the owner\'s to answer')

  // A write sent to B is forwarded to the owner, streamed.
  const next = pixels(W * H * 3, 99)
  const put = await json<ClusterDescriptor>(`${b.url}/images/big/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: next })
  t.equal(put.status, 200)
  t.equal(put.body.generation, 1)
  t.ok(Buffer.from((await a.server.store.read('big')).bytes).equals(Buffer.from(next)), 'the owner has the new pixels')
  const wrong = await json<{ code: string }>(`${b.url}/images/big/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(5) })
  t.equal(wrong.body.code, 'PXP_ERR_BYTE_COUNT', 'the owner\'s refusal comes back as it is')

  // Local ids win; unknown ids are 404 as ever.
  t.equal((await json<{ id: string }>(`${b.url}/images/mine`)).body.id, 'mine')
  t.equal((await json<{ code: string }>(`${b.url}/images/nowhere`)).body.code, 'PXP_ERR_NOT_FOUND')

  // WebSocket: describe works across nodes; get and put of another node's image are refused, naming the owner.
  const ws = await WireClient.connect(t, b.url)
  const d = await ws.request({ op: 'describe', id: 'big' })
  t.equal(d.descriptor.node, 'node-a')
  await until(async () => b.server.cluster!.ownerOf('big') ?? undefined, { what: 'B mirrors the catalog' })
  const get = await ws.request({ op: 'get', id: 'big' })
  t.equal(get.code, 'PXP_ERR_NOT_OWNER')
  t.match(get.message, a.url)
  const wsPut = await ws.request({ op: 'put', id: 'big', data: new Uint8Array(W * H * 3) })
  t.equal(wsPut.code, 'PXP_ERR_NOT_OWNER')

  // Deleting through B deletes at the owner.
  t.equal((await fetch(`${b.url}/images/big`, { method: 'DELETE' })).status, 204)
  t.notOk(a.server.store.has('big'))
  t.same(ws.invalid, [])

  // The owner stops answering (its HTTP side closed; its heartbeat and catalog are still in Redis):
  // a forwarded request fails at once with PXP_ERR_PEER_UNREACHABLE instead of hanging.
  a.server.store.create({ id: 'x', width: 2, height: 2, mode: 'L' })
  await until(async () => (await b.server.cluster!.locate('x')) ?? undefined, { what: 'B knows x' })
  await a.server.app.close()
  const unreachable = await json<{ code: string, message: string }>(`${b.url}/images/x/data`)
  t.equal(unreachable.status, 502)
  t.equal(unreachable.body.code, 'PXP_ERR_PEER_UNREACHABLE')
  t.match(unreachable.body.message, 'node-a')
})

t.test('cluster options are checked up front', async (t) => {
  const { createServer } = await import('../../server/server.js')
  await t.rejects(createServer({ cluster: { redis: 'http://x' } }), { code: 'PXP_ERR_VALIDATION', message: /cluster\.redis/ })
  await t.rejects(createServer({ cluster: { redis: 'redis://x:1', advertise: 'x:1' } }), { code: 'PXP_ERR_VALIDATION', message: /cluster\.advertise/ })
  await t.rejects(createServer({ cluster: { redis: 'redis://x:1', nodeId: 'a b' } }), { code: 'PXP_ERR_VALIDATION', message: /cluster\.nodeId/ })
  await t.rejects(createServer({ cluster: { redis: 'redis://x:1', heartbeatMs: 500, ttlMs: 600 } }), { code: 'PXP_ERR_VALIDATION', message: /cluster\.ttlMs/ })
  await t.rejects(createServer({ host: '0.0.0.0', insecure: true, cluster: { redis: 'redis://x:1' } }), { code: 'PXP_ERR_VALIDATION', message: /cluster\.advertise is required/ })
})
