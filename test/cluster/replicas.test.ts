/**
 * Worker replicas without Redis: node A and node B are two real servers in this process; a tiny directory
 * relays A's store events the way the cluster core does, and B's workers open A's images.
 */
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { ClusterDirectory, ClusterDirectoryEvents, RemoteEntry } from '../../server/cluster/directory.js'
import { attachReplicas, type ReplicaManager, type ReplicaOptions } from '../../server/cluster/replicas.js'
import { pullImage } from '../../server/cluster/replica-pull.js'
import type { PixelportServer } from '../../server/server.js'
import { startAgent } from '../helpers/agent.js'
import { startServer, type Started } from '../helpers/server.js'
import { until } from '../helpers/until.js'

const MiB = 1024 * 1024

/** What the cluster core tells B about A: A's images, at `url` (A itself or a proxy in front of it). */
class TestDirectory extends EventEmitter<ClusterDirectoryEvents> implements ClusterDirectory {
  readonly nodeId = 'B'
  /** Entries that exist only in the catalog (their owner lies or is gone). */
  readonly fake = new Map<string, RemoteEntry>()
  peerHeaderCalls = 0

  constructor (private readonly owner: PixelportServer, public url: string) {
    super()
    owner.store.on('created', (d) => this.emit('updated', this.entry(d.id)!))
    owner.store.on('updated', (d) => this.emit('updated', this.entry(d.id)!))
    owner.store.on('deleted', (d) => this.emit('deleted', { id: d.id, node: 'A' }))
  }

  entry (id: string): RemoteEntry | null {
    const fake = this.fake.get(id)
    if (fake !== undefined) return fake
    if (!this.owner.store.has(id)) return null
    const descriptor = this.owner.store.describe(id)
    return { id, node: 'A', url: this.url, generation: descriptor.generation, descriptor }
  }

  async locate (id: string): Promise<RemoteEntry | null> {
    return this.entry(id)
  }

  peerHeaders (): Record<string, string> {
    this.peerHeaderCalls++
    return { 'x-test-peer': 'B' }
  }
}

interface Seen { url: string, range?: string, ifRange?: string }

/** A forwarding proxy in front of A that logs every request and may act before forwarding one. */
async function startProxy (t: Test, target: string): Promise<{ url: string, seen: Seen[], before: ((n: number) => Promise<void>) | null, mostInFlight: number, closeConnections: () => void }> {
  const state = { url: '', seen: [] as Seen[], before: null as ((n: number) => Promise<void>) | null, mostInFlight: 0, closeConnections: () => {} }
  let inFlight = 0
  const server = http.createServer((req, res) => {
    state.seen.push({ url: req.url!, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined })
    state.mostInFlight = Math.max(state.mostInFlight, ++inFlight)
    res.once('close', () => inFlight--)
    const n = state.seen.length
    void (state.before?.(n) ?? Promise.resolve()).then(() => {
      const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers)
        answer.pipe(res)
      })
      up.on('error', () => res.destroy())
      res.on('close', () => up.destroy())
      req.pipe(up)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  Object.assign(state, { closeConnections: () => server.closeAllConnections() })
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return state
}

interface Cluster {
  a: Started
  b: Started
  directory: TestDirectory
  replicas: ReplicaManager
  proxy: Awaited<ReturnType<typeof startProxy>>
}

async function cluster (t: Test, options: ReplicaOptions = {}, bCapacity = 64 * MiB): Promise<Cluster> {
  const a = await startServer(t)
  const b = await startServer(t, { capacity: bCapacity })
  const proxy = await startProxy(t, a.url)
  const directory = new TestDirectory(a.server, proxy.url)
  const replicas = attachReplicas(b.server, directory, { sweepMs: 0, ...options })
  t.teardown(() => replicas.close())
  return { a, b, directory, replicas, proxy }
}

/** Bytes 0, 1, 2, … (mod 251, plus `salt`): every offset distinguishable. */
function pattern (length: number, salt = 0): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (i + salt) % 251
  return bytes
}

t.test('a worker on B opens an image of A: a read-only replica, bytes equal, owner named', async (t) => {
  const { a, b, directory, replicas } = await cluster(t)
  const bytes = pattern(64 * 32 * 3, 7)
  a.server.store.create({ id: 'cam/a', mode: 'RGB', width: 64, height: 32 }, bytes)
  await a.server.store.write('cam/a', pattern(bytes.length, 9))
  const w = await startAgent(b.server)
  t.teardown(() => w.worker.terminate())

  const d = await w.call('open', 'cam/a')
  t.match(d, { id: 'cam/a', mode: 'RGB', shape: [32, 64, 3], copied: true, readonly: true, owner: 'A', stale: false, sourceGeneration: 1 })
  t.same((await w.call('read', 'cam/a')).bytes, Array.from(pattern(bytes.length, 9)), 'the owner\'s current pixels')
  t.equal(b.server.store.size, 1)
  t.ok(directory.peerHeaderCalls >= 1, 'peer headers sent with the pull')

  t.equal((await w.fail('fill', 'cam/a', 1)).code, 'PXP_ERR_READONLY', 'worker write() refused')
  t.equal((await w.fail('loan', 'cam/a', 1)).code, 'PXP_ERR_READONLY', 'worker loan() refused')
  const put = await fetch(`${b.url}/images/cam%2Fa/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
  t.equal(put.status, 409)
  t.equal(((await put.json()) as { code: string }).code, 'PXP_ERR_READONLY', 'HTTP PUT on B refused')
  await t.rejects(b.server.store.write('cam/a', bytes), { code: 'PXP_ERR_READONLY' }, 'store.write refused')
  t.match(await (await fetch(`${b.url}/images/cam%2Fa`)).json(), { owner: 'A', copied: true, readonly: true, stale: false }, 'HTTP descriptor on B names the owner')
  t.match(replicas.replicaOf('cam/a'), { node: 'A', url: directory.url, sourceGeneration: 1, stale: false }, 'the replica state, owned by cluster/replicas')
  t.equal(b.server.store.originOf('cam/a'), replicas.replicaOf('cam/a'), 'the store holds it as the image\'s origin')

  t.equal((await w.fail('open', 'nowhere')).code, 'PXP_ERR_NOT_FOUND', 'an id no node owns')
  t.equal(b.server.store.size, 1)
})

t.test('many workers share one replica; a commit on A wakes them with the new pixels (latest-only)', async (t) => {
  const { a, b, replicas, proxy } = await cluster(t)
  const length = 128 * 128
  a.server.store.create({ id: 'shared', mode: 'L', width: 128, height: 128 }, pattern(length, 1))
  const [w1, w2] = await Promise.all([startAgent(b.server), startAgent(b.server)])
  t.teardown(() => Promise.all([w1.worker.terminate(), w2.worker.terminate()]))

  const before = b.server.store.size
  const [d1, d2] = await Promise.all([w1.call('open', 'shared'), w2.call('open', 'shared')])
  t.equal(b.server.store.size, before + 1, 'one replica for two workers')
  t.equal(proxy.seen.length, 1, 'pulled once (one range: the image is smaller than a chunk)')
  t.same(d1.location, d2.location, 'the same memory')

  const waiting = [w1.call('waitForChange', 'shared', d1.generation, 15000), w2.call('waitForChange', 'shared', d2.generation, 15000)]
  await a.server.store.write('shared', pattern(length, 2))
  const woke = await Promise.all(waiting)
  t.ok(woke.every((g: number) => g > d1.generation), 'both waiters woke with a newer generation')
  await replicas.settled()
  t.same((await w2.call('read', 'shared')).bytes, Array.from(pattern(length, 2)), 'the new pixels')

  // A burst of commits: the replica ends on the last one, refreshed at most once per commit.
  const localBefore = b.server.store.generation('shared')
  for (let i = 3; i < 9; i++) await a.server.store.write('shared', pattern(length, i))
  await replicas.settled()
  const copy = await b.server.store.read('shared')
  t.same(Array.from(copy.bytes), Array.from(pattern(length, 8)), 'latest pixels')
  t.equal(copy.descriptor.sourceGeneration, a.server.store.generation('shared'), 'sourceGeneration is the owner\'s')
  t.ok(copy.generation - localBefore >= 1 && copy.generation - localBefore <= 6, `refreshed ${copy.generation - localBefore} times for 6 commits`)
  t.equal(b.server.store.size, before + 1)
})

t.test('A deletes the image or goes down: the replica says stale, stays readable, then is swept', async (t) => {
  const { a, b, directory, replicas } = await cluster(t)
  a.server.store.create({ id: 'gone', mode: 'L', width: 16, height: 16 }, pattern(256, 3))
  a.server.store.create({ id: 'down', mode: 'L', width: 16, height: 16 }, pattern(256, 4))
  const w = await startAgent(b.server)
  t.teardown(() => w.worker.terminate())
  await w.call('open', 'gone')
  await w.call('open', 'down')

  a.server.store.delete('gone')
  t.match(await w.call('describe', 'gone'), { owner: 'A', stale: true }, 'a worker re-describing sees stale')
  t.same((await w.call('read', 'gone')).bytes, Array.from(pattern(256, 3)), 'pixels still readable')
  t.match(await w.call('describe', 'down'), { stale: false }, 'the other replica is fresh')

  directory.emit('node-down', { node: 'A' })
  t.match(b.server.store.describe('down'), { stale: true }, 'node down: stale')
  // A commit announced after the node went down does not revive it.
  directory.emit('updated', { ...directory.entry('down')!, generation: 99 })
  await replicas.settled()
  t.equal(b.server.store.describe('down').sourceGeneration, 0)

  replicas.sweep()
  t.ok(b.server.store.has('gone'), 'held by a worker: kept')
  await w.call('release', 'gone')
  replicas.sweep()
  t.notOk(b.server.store.has('gone'), 'no holder left: swept')
  t.equal((await w.fail('open', 'gone')).code, 'PXP_ERR_NOT_FOUND', 'and not pulled again: A has no such image')
  t.ok(b.server.store.has('down'), 'still held')
})

t.test('a 20 MiB image is pulled in 4 MiB ranges of one generation; a commit mid-pull restarts it', async (t) => {
  const { a, b, proxy } = await cluster(t, { chunkBytes: 4 * MiB })
  const shape = [1280, 4096, 4]
  const length = 20 * MiB
  a.server.store.create({ id: 'big', shape, typestr: '|u1' }, pattern(length, 5))
  // Before the second range is forwarded, A commits: its If-Range no longer matches.
  proxy.before = async (n) => { if (n === 2) await a.server.store.write('big', pattern(length, 6)) }
  const w = await startAgent(b.server)
  t.teardown(() => w.worker.terminate())

  const d = await w.call('open', 'big')
  t.match(d, { owner: 'A', copied: true, sourceGeneration: 1, byteLength: length })
  // Attempts start with a request without If-Range (the first range, which fixes the generation).
  const attempts: Seen[][] = []
  for (const seen of proxy.seen) {
    if (seen.ifRange === undefined) attempts.push([])
    attempts.at(-1)!.push(seen)
  }
  t.equal(attempts.length, 2, 'the commit mid-pull made it start over once')
  t.equal(attempts[0][0].range, 'bytes=0-4194303')
  t.ok(attempts[0].slice(1).every((s) => s.ifRange === '"0"'), 'every further range of the first attempt is tied to generation 0')
  t.ok(attempts[0].length <= 3, 'it stopped at the changed range (and at most one other in flight)')
  const last = attempts[1]
  t.equal(last[0].range, 'bytes=0-4194303')
  t.ok(last.slice(1).every((s) => s.ifRange === '"1"'), 'every further range is tied to generation 1')
  t.same(last.map((s) => s.range).sort(), [
    'bytes=0-4194303', 'bytes=12582912-16777215', 'bytes=16777216-20971519', 'bytes=4194304-8388607', 'bytes=8388608-12582911',
  ], 'five ranges of generation 1, each once')
  const copy = await b.server.store.read('big')
  t.ok(Buffer.from(copy.bytes).equals(Buffer.from(pattern(length, 6))), 'all 20 MiB are generation 1')
})

/** An owner with one 6 MiB image (`pattern(length, salt)`) behind a logging proxy. */
async function ownerBehindProxy (t: Test, id: string, salt: number): Promise<{ proxy: Awaited<ReturnType<typeof startProxy>>, length: number }> {
  const a = await startServer(t)
  const proxy = await startProxy(t, a.url)
  const length = 6 * MiB
  a.server.store.create({ id, shape: [1536, 1024, 4], typestr: '|u1' }, pattern(length, salt))
  return { proxy, length }
}

t.test('the ranges after the first go two at a time, never more', async (t) => {
  const { proxy, length } = await ownerBehindProxy(t, 'wide', 3)
  // Each range is held back a little at the proxy, so that ranges sent together are seen together.
  proxy.before = async () => { await new Promise((resolve) => setTimeout(resolve, 20)) }
  const pulled = await pullImage({ node: 'A', url: proxy.url, id: 'wide', headers: {} }, length, { chunkBytes: 512 * 1024, maxRestarts: 2 })
  t.equal(pulled.requests, 12)
  t.equal(proxy.mostInFlight, 2)
  t.ok(Buffer.from(pulled.bytes).equals(Buffer.from(pattern(length, 3))), 'every byte in its place')
})

t.test('a range that fails fails the pull, and stops the other range in flight', async (t) => {
  const { proxy, length } = await ownerBehindProxy(t, 'cut', 1)
  // The third request never reaches A: the proxy waits, then the test cuts it (as a dead owner would).
  let cut: (() => void) | null = null
  proxy.before = async (n) => { if (n === 3) await new Promise<void>((resolve) => { cut = resolve }) }
  const into = new Uint8Array(length)
  const pulling = pullImage({ node: 'A', url: proxy.url, id: 'cut', headers: {} }, length, { chunkBytes: 1 * MiB, maxRestarts: 2 }, into)
  await until(() => cut !== null, { what: 'the third request at the proxy' })
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.ok(proxy.mostInFlight <= 2, 'while one range hangs, the other slot goes on, one range at a time')
  proxy.closeConnections()
  await t.rejects(pulling, { code: 'PXP_ERR_PEER_UNREACHABLE' })
  const snapshot = Buffer.from(into)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(Buffer.from(into).equals(snapshot), 'nothing writes into the buffer after the pull failed')
})

t.test('the pull falls back to one whole GET when the owner keeps committing', async (t) => {
  const a = await startServer(t)
  const proxy = await startProxy(t, a.url)
  const length = 64 * 1024
  a.server.store.create({ id: 'busy', mode: 'L', width: 256, height: 256 }, pattern(length, 0))
  let salt = 0
  // Every second range finds a newer generation.
  proxy.before = async (n) => { if (n % 2 === 0) await a.server.store.write('busy', pattern(length, ++salt)) }
  const pulled = await pullImage({ node: 'A', url: proxy.url, id: 'busy', headers: {} }, length, { chunkBytes: 16 * 1024, maxRestarts: 2 })
  t.equal(pulled.restarts, 2)
  t.same(proxy.seen.at(-1)!.range, undefined, 'the last request is a whole-body GET')
  t.ok(Buffer.from(pulled.bytes).equals(Buffer.from(pattern(length, pulled.generation))), 'one consistent generation')
})

t.test('a pull that fails leaves nothing behind', async (t) => {
  const { a, b, directory, proxy } = await cluster(t, {}, 16 * MiB)
  const w = await startAgent(b.server)
  t.teardown(() => w.worker.terminate())
  const used = b.server.store.stats().used
  const descriptor = { ...a.server.store.create({ id: 'real', mode: 'L', width: 8, height: 8 }), id: 'ghost' }

  directory.fake.set('ghost', { id: 'ghost', node: 'A', url: proxy.url, generation: 0, descriptor })
  t.equal((await w.fail('open', 'ghost')).code, 'PXP_ERR_NOT_FOUND', 'the owner answered 404: its code comes through')

  directory.fake.set('dead', { id: 'dead', node: 'C', url: 'http://127.0.0.1:1', generation: 0, descriptor: { ...descriptor, id: 'dead' } })
  t.equal((await w.fail('open', 'dead')).code, 'PXP_ERR_PEER_UNREACHABLE', 'the owner did not answer')

  b.server.store.create({ id: 'local', mode: 'L', width: 4096, height: 2048 })
  const usedByLocal = b.server.store.stats().used
  a.server.store.create({ id: 'huge', mode: 'L', width: 4096, height: 3072 })
  const requests = proxy.seen.length
  t.equal((await w.fail('open', 'huge')).code, 'PXP_ERR_CAPACITY', '12 MiB more do not fit in B\'s 16 MiB next to 8 MiB')
  t.equal(proxy.seen.length, requests, 'refused before any byte travelled')
  t.equal(b.server.store.stats().used, usedByLocal)
  b.server.store.delete('local')

  t.equal(b.server.store.size, 0, 'no replica visible')
  t.equal(b.server.store.stats().used, used, 'no memory held')
  t.equal((await w.call('open', 'real')).owner, 'A', 'a later open of a real image works')
})
