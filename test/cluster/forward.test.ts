/**
 * Forwarding a read to the owner (server/cluster/forward.ts) over a real two-node cluster: several reads
 * through B reuse one keep-alive connection to the owner, and a client that stops reading makes B stop
 * reading from the owner (backpressure), instead of B holding the whole image.
 */
import http from 'node:http'
import net from 'node:net'
import t, { type Test } from 'tap'
import { HttpClient } from '../../client/remote/http.js'
import type { ServerOptions } from '../../server/options.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { startServer, type Started } from '../helpers/server.js'
import { until } from '../helpers/until.js'

const CLUSTER = { heartbeatMs: 100, ttlMs: 1500 }

async function node (t: Test, redis: TestRedis, nodeId: string, extra: ServerOptions = {}, advertise?: string): Promise<Started> {
  return await startServer(t, { ...extra, cluster: { redis: redis.url, nodeId, ...CLUSTER, ...(advertise === undefined ? {} : { advertise }) } })
}

/** Until B has the owner of `id` in its catalog and a read through it answers 200. */
async function readable (b: Started, id: string): Promise<void> {
  await until(async () => (await b.server.cluster!.locate(id)) ?? undefined, { what: `B knows ${id}` })
}

/** GET through `url` with a fresh client connection each time: the status and the body's length. */
async function read (url: string): Promise<[number, number]> {
  const res = await fetch(url, { headers: { connection: 'close' } })
  return [res.status, (await res.arrayBuffer()).byteLength]
}

t.test('reads through B reuse one keep-alive connection to the owner', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'img', width: 64, height: 64, mode: 'RGB' })
  await readable(b, 'img')
  let accepted = 0
  a.server.app.server.on('connection', () => { accepted++ })
  for (let i = 0; i < 5; i++) t.same(await read(`${b.url}/images/img/data`), [200, 64 * 64 * 3], `read ${i + 1}`)
  t.equal((await read(`${b.url}/images/img`))[0], 200, 'and a descriptor read')
  t.equal(accepted, 1, 'the owner accepted one connection for six forwarded reads')
})

t.test('a download through B gets, in one request, the descriptor naming the owner', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'far', width: 16, height: 8, mode: 'L' }, new Uint8Array(128).fill(5))
  await readable(b, 'far')
  const client = new HttpClient(b.url)
  t.teardown(() => client.close())
  const got = await client.download('far')
  t.match(got.descriptor, { id: 'far', node: 'node-a', url: a.url, shape: [8, 16], byteLength: 128 }, 'as B describes it: with the owner')
  t.same(got.descriptor, { ...await client.describe('far'), generation: got.generation }, 'the same descriptor a describe through B gives')
  t.ok(Buffer.from(got.bytes).equals(Buffer.alloc(128, 5)))
})

/**
 * A TCP relay in front of the owner (the owner advertises the relay's address) that counts the bytes the
 * owner sends towards B. It relays with backpressure itself (pipe), so it only counts what B reads.
 */
async function countingRelay (t: Test): Promise<{ url: string, target: { port: number }, fromOwner: () => number }> {
  const target = { port: 0 }
  let bytes = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const owner = net.connect(target.port, '127.0.0.1')
    sockets.add(client).add(owner)
    owner.on('data', (d: Buffer) => { bytes += d.byteLength })
    owner.pipe(client)
    client.pipe(owner)
    const end = (): void => { client.destroy(); owner.destroy() }
    owner.on('error', end).on('close', end)
    client.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, target, fromOwner: () => bytes }
}

t.test('a client that stops reading stops B reading from the owner', async (t) => {
  const W = 3840
  const H = 2160
  const size = W * H * 4
  const redis = await startRedis(t)
  const relay = await countingRelay(t)
  const big: ServerOptions = { blockSize: 64 * 1024 * 1024, capacity: 128 * 1024 * 1024 }
  const a = await node(t, redis, 'node-a', big, relay.url)
  relay.target.port = Number(new URL(a.url).port)
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'frame', width: W, height: H, mode: 'RGBA' })
  await readable(b, 'frame')

  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${b.url}/images/frame/data`, resolve).on('error', reject))
  t.equal(res.statusCode, 200)
  // Read one chunk, then stop: the bytes moved from the owner must level off far below the image.
  let received = 0
  await new Promise<void>((resolve) => res.once('data', (chunk: Buffer) => { received += chunk.byteLength; resolve() }))
  res.pause()
  let last = -1
  const settled = await until(() => {
    const now = relay.fromOwner()
    const stable = now === last
    last = now
    return stable ? now : undefined
  }, { what: 'the owner\'s bytes to level off', interval: 250, timeout: 20_000 })
  t.comment(`moved from the owner while the client paused: ${(settled / 2 ** 20).toFixed(1)} MiB of ${(size / 2 ** 20).toFixed(1)} MiB`)
  t.ok(settled < size / 2, 'B did not read the image from the owner while its client was not reading')

  // And the whole image arrives once the client reads again.
  res.on('data', (chunk: Buffer) => { received += chunk.byteLength })
  res.resume()
  await new Promise((resolve) => res.once('end', resolve))
  t.equal(received, size, 'every byte arrives after the pause')
})
