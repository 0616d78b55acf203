/**
 * Faults: a node killed with SIGKILL (a real child process) leaves the catalog within its heartbeat TTL;
 * Redis restarted empty: nodes keep serving meanwhile, then rejoin and republish, and the events of the
 * outage still reach the other nodes' subscribers.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import t from 'tap'
import type { ClusterDescriptor, ClusterNodeStatus } from '../../server/cluster/node.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { childArgs } from '../helpers/shm.js'
import { WireClient } from '../helpers/wire-client.js'
import { until } from '../helpers/until.js'

const CHILD = 'test/fixtures/cluster-node-child'
const HEARTBEAT_MS = 100
const TTL_MS = 1000

t.jobs = 2

async function json<T> (url: string): Promise<{ status: number, body: T }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.json() as T }
}

async function clusterImages (url: string): Promise<{ images: ClusterDescriptor[], partial: boolean, error?: { code: string } }> {
  return (await json<{ images: ClusterDescriptor[], partial: boolean, error?: { code: string } }>(`${url}/images?scope=cluster`)).body
}

t.test('a node killed with SIGKILL leaves the catalog within its TTL; subscribers hear its images go', async (t) => {
  const redis = await startRedis(t)
  const b = await startServer(t, { cluster: { redis: redis.url, nodeId: 'node-b', heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS } })
  const child = spawn(process.execPath, [...childArgs(CHILD), redis.url, 'node-k', String(HEARTBEAT_MS), String(TTL_MS)], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  const [line] = await once(createInterface({ input: child.stdout! }), 'line') as [string]
  const started = JSON.parse(line) as { url: string, node: string, joined: boolean }
  t.equal(started.joined, true, 'the child joined')

  const ws = await WireClient.connect(t, b.url)
  const sub = await ws.request({ op: 'subscribe', scope: 'cluster' })
  await until(async () => (await clusterImages(b.url)).images.find((d) => d.id === 'node-k/img'), { what: 'B lists the child\'s image' })
  t.equal((await fetch(`${b.url}/images/node-k%2Fimg/data`)).status, 200, 'B reads it from the child')
  const down = once(b.server.cluster!, 'node-down')

  child.kill('SIGKILL')
  await once(child, 'exit')
  const killedAt = Date.now()
  await until(async () => (await clusterImages(b.url)).images.some((d) => d.node === 'node-k') ? undefined : true, { what: 'the image leaves B\'s listing' })
  const gone = Date.now() - killedAt
  // Bounded: the TTL, plus one heartbeat of the key's last refresh, plus generous slack for a loaded machine.
  t.ok(gone <= TTL_MS + HEARTBEAT_MS + 3000, `gone from the listing ${gone} ms after the kill (TTL ${TTL_MS} ms)`)
  t.same(await down, [{ node: 'node-k' }], 'the directory says the node is down')
  // (Its `created` may or may not have reached the subscription, depending on when the child created it.)
  const deleted = await ws.next((m) => m.op === 'event' && m.sub === sub.sub && m.id === 'node-k/img' && m.type === 'deleted')
  t.equal(deleted.type, 'deleted', 'a cluster subscriber hears the dead node\'s image is gone')
  t.equal(deleted.descriptor.node, 'node-k')
  t.same((await json<ClusterNodeStatus>(`${b.url}/cluster`)).body.nodes.map((n) => n.id), ['node-b'])
  t.equal((await json<{ code: string }>(`${b.url}/images/node-k%2Fimg/data`)).body.code, 'PXP_ERR_NOT_FOUND', 'nothing stale is served')
  t.same(ws.invalid, [])
})

t.test('Redis restarts empty: nodes serve on, then rejoin, republish, and deliver the outage\'s events', async (t) => {
  const redis = await startRedis(t)
  const opts = (nodeId: string): { cluster: { redis: string, nodeId: string, heartbeatMs: number, ttlMs: number } } => ({ cluster: { redis: redis.url, nodeId, heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS } })
  const a = await startServer(t, opts('node-a'))
  const b = await startServer(t, opts('node-b'))
  const bytes = new Uint8Array(64).fill(3)
  a.server.store.create({ id: 'a1', width: 8, height: 8, mode: 'L' })
  b.server.store.create({ id: 'b1', width: 1, height: 1, mode: 'L' })
  await until(async () => (await clusterImages(b.url)).images.find((d) => d.id === 'a1'), { what: 'B lists a1' })
  await until(async () => b.server.cluster!.ownerOf('a1') ?? undefined, { what: 'B mirrors a1' })
  const ws = await WireClient.connect(t, b.url)
  const sub = await ws.request({ op: 'subscribe', scope: 'cluster', ids: ['a1'], policy: 'all' })

  await redis.stop()
  await until(async () => b.server.cluster!.redisReady ? undefined : true, { what: 'B sees Redis gone' })
  const during = await clusterImages(b.url)
  t.equal(during.partial, true, 'cluster listing says it is partial')
  t.equal(during.error?.code, 'PXP_ERR_CLUSTER_UNAVAILABLE')
  t.same(during.images.map((d) => d.id), ['b1'], 'and lists this node\'s own images')
  const status = (await json<ClusterNodeStatus>(`${b.url}/cluster`)).body
  t.equal(status.partial, true)
  t.not(status.redis.status, 'ready')
  // Nodes keep serving their own images, and a read of a known remote image still reaches its owner.
  const written = await a.server.store.write('a1', bytes)
  t.equal(written.generation, 1, 'A commits while Redis is away')
  const viaB = await fetch(`${b.url}/images/a1/data`)
  t.equal(viaB.status, 200, 'B forwards to the owner it knew')
  t.ok(Buffer.from(await viaB.arrayBuffer()).equals(Buffer.from(bytes)), 'the current bytes')
  const ws2 = await WireClient.connect(t, b.url)
  t.equal((await ws2.request({ op: 'list', scope: 'cluster' })).partial, true, 'WebSocket list says partial too')

  await redis.start()
  const after = await until(async () => {
    const l = await clusterImages(b.url)
    return !l.partial && l.images.some((d) => d.id === 'a1' && d.generation === 1) ? l : undefined
  }, { what: 'both nodes listed again' })
  t.same(after.images.map((d) => `${d.node}:${d.id}`).sort(), ['node-a:a1', 'node-b:b1'], 'catalog republished after the restart')
  const event = await ws.next((m) => m.op === 'event' && m.sub === sub.sub && m.id === 'a1')
  t.equal(event.type, 'updated', 'the commit made during the outage reaches B\'s subscriber')
  t.equal(event.generation, 1)
  t.same((await json<ClusterNodeStatus>(`${a.url}/cluster`)).body.nodes.map((n) => n.id), ['node-a', 'node-b'], 'both rejoined')
  t.same([...ws.invalid, ...ws2.invalid], [])
})
