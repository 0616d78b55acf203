/**
 * Cluster benchmark: `npm run bench:cluster` (or `npx tsx bench/cluster.ts`; `--quick` for a smoke run).
 *
 * A real redis-server, three Pixelport nodes (A, B, C) and a plain reverse proxy, each in its own process,
 * on loopback. In one run, alternated round by round so every way sees the same machine load:
 *   - reading A's 4K RGBA frame (33.2 MB) from another address: straight from A (the baseline); through a
 *     plain reverse-proxy hop in front of A (@fastify/reply-from, its undici defaults); through node B
 *     (Pixelport's forwarding); through B with `?redirect=1` (307 to A, followed);
 *   - a worker replica's pull on B (replica-pull.ts, as the replica manager calls it) of the same frame;
 *   - commit on A (store.write in A's process) → `updated` event at a cluster-scope WebSocket subscriber
 *     on B, beside raw Redis `XADD` → `XREAD BLOCK` between two ioredis clients; timestamps on one clock
 *     (performance.timeOrigin + now(), shared by processes on one machine).
 * Prints min / median / max per measure and the load average, and writes bench/results/cluster.json.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { Packr, Unpackr } from 'msgpackr'
import { WebSocket } from 'ws'
import { WIRE_OPTIONS } from '../protocol/messages.js'
import { EVENTS_KEY } from '../server/cluster/keys.js'
import { pullImage } from '../server/cluster/replica-pull.js'
import { createServer } from '../server/server.js'
import { QUICK, sig, writeResults, type ResultRow } from './results.js'
import { median, percentile } from './stats.js'

const WIDTH = 3840
const HEIGHT = 2160
const FRAME_BYTES = WIDTH * HEIGHT * 4
const ROUNDS = QUICK ? 5 : 9
const WARMUP = QUICK ? 1 : 2
const COMMITS = QUICK ? 40 : 400
const SPLIT_COMMITS = QUICK ? 20 : 200
/** Commits spaced wider than the coalescing window (20 ms), so each one is flushed on its own. */
const SPACING_MS = 25
/** What replicas.ts uses by default. */
const PULL = { chunkBytes: 4 * 1024 * 1024, maxRestarts: 3 }

/** One clock for every process on this machine, in ms with a fraction. */
const now = (): number => performance.timeOrigin + performance.now()

type Command = { op: 'commit', g: number } | { op: 'pull', node: string, url: string }

// ---- children: a node, or the plain proxy ------------------------------------------------------------

async function runNode (nodeId: string, redis: string): Promise<void> {
  const server = await createServer({ port: 0, capacity: 512 << 20, maxEventLoopDelayMs: 0, cluster: { redis, nodeId } })
  const url = await server.listen()
  if (nodeId === 'node-a') {
    const frame = new Uint8Array(FRAME_BYTES)
    for (let i = 0; i < frame.length; i += 4096) frame[i] = i & 0xff
    server.store.create({ id: 'frame4k', width: WIDTH, height: HEIGHT, mode: 'RGBA' }, frame)
    server.store.create({ id: 'tick', width: 16, height: 16, mode: 'L' })
  }
  const tick = new Uint8Array(256)
  const staging = new Uint8Array(FRAME_BYTES)
  process.on('message', (m: Command) => {
    // A failure is sent back as the answer: the parent must not wait for ever on a child that failed.
    void (async () => {
      if (m.op === 'commit') {
        tick.fill(m.g & 0xff)
        const at = now()
        const { generation } = await server.store.write('tick', tick)
        process.send!({ op: 'committed', generation, at })
      } else {
        const peer = { node: m.node, url: m.url }
        const t0 = performance.now()
        const pulled = await pullImage({ ...peer, id: 'frame4k', headers: server.cluster!.peerHeaders(peer) }, FRAME_BYTES, PULL, staging)
        process.send!({ op: 'pulled', ms: performance.now() - t0, bytes: pulled.bytes.byteLength })
      }
    })().catch((err: Error) => process.send!({ op: m.op === 'commit' ? 'committed' : 'pulled', error: `${m.op} on ${nodeId}: ${err.stack ?? err.message}` }))
  })
  process.send!({ url })
  process.on('disconnect', () => { void server.close().then(() => process.exit(0)) })
}

async function runProxy (target: string): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { default: replyFrom } = await import('@fastify/reply-from')
  const app = Fastify()
  await app.register(replyFrom, { base: target })
  app.get('/*', async (request, reply) => await reply.from(request.url))
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  process.send!({ url: address })
  process.on('disconnect', () => { void app.close().then(() => process.exit(0)) })
}

// ---- the bench (parent) -----------------------------------------------------------------------------

async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

async function startRedis (): Promise<{ url: string, stop: () => void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-bench-redis-'))
  const port = await freePort()
  execFileSync('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'yes', '--dir', dir, '--pidfile', path.join(dir, 'redis.pid'), '--logfile', path.join(dir, 'redis.log')])
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      try { process.kill(Number(readFileSync(path.join(dir, 'redis.pid'), 'utf8')), 'SIGTERM') } catch {}
      setTimeout(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }), 300)
    },
  }
}

async function startChild (args: string[]): Promise<{ child: ChildProcess, url: string }> {
  const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const { url } = await new Promise<{ url: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string }))
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
  return { child, url }
}

/** Ask a child for something and wait for the answer with `op`. */
async function ask<T> (child: ChildProcess, command: Command, op: string): Promise<T> {
  return await new Promise((resolve, reject) => {
    const on = (m: { op?: string, error?: string }): void => {
      if (m.op !== op) return
      child.off('message', on)
      if (m.error !== undefined) reject(new Error(m.error))
      else resolve(m as T)
    }
    child.on('message', on)
    child.send(command)
  })
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })

/** GET url (following one redirect), counting the bytes: the transport, not the allocation of a destination. */
async function download (url: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      if (res.statusCode === 307 && res.headers.location !== undefined) {
        res.resume()
        download(res.headers.location).then(resolve, reject)
        return
      }
      if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode}`))
      let n = 0
      res.on('data', (chunk: Buffer) => { n += chunk.byteLength })
      res.on('end', () => resolve(n))
      res.on('error', reject)
    }).on('error', reject)
  })
}

interface Spread { min: number, median: number, max: number }
const spread = (xs: number[]): Spread => ({ min: Math.min(...xs), median: median(xs), max: Math.max(...xs) })

/** MB/s of each way, round by round, the order rotated every round. */
async function reads (ways: Record<string, () => Promise<number>>): Promise<Record<string, number[]>> {
  const names = Object.keys(ways)
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let w = 0; w < WARMUP; w++) for (const n of names) await ways[n]()
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]
      const t0 = performance.now()
      const bytes = await ways[name]()
      if (bytes !== FRAME_BYTES) throw new Error(`${name}: ${bytes} bytes`)
      rates[name].push(bytes / 1e6 / ((performance.now() - t0) / 1000))
    }
  }
  return rates
}

/** Per-round ratios a/b. */
const ratios = (a: number[], b: number[]): number[] => a.map((x, i) => x / b[i])

/** Raw Redis: XADD on one ioredis client → XREAD BLOCK on another, in ms. */
async function rawRedisSample (writer: Redis, reader: Redis, lastId: { id: string }): Promise<number> {
  // A bounded block: a sample that never arrives fails the run instead of hanging it.
  const read = reader.xread('BLOCK', 5000, 'STREAMS', 'bench:raw', lastId.id) as Promise<Array<[string, Array<[string, string[]]>]> | null>
  await new Promise((resolve) => setImmediate(resolve))
  const t0 = now()
  await writer.xadd('bench:raw', '*', 'f', 'v')
  const reply = await read
  const t1 = now()
  if (reply === null) throw new Error('raw Redis sample: XREAD saw nothing within 5 s')
  lastId.id = reply[0][1].at(-1)![0]
  return t1 - t0
}

async function main (): Promise<void> {
  const load = os.loadavg()
  console.log(`Pixelport cluster benchmark — Node ${process.version}, ${os.cpus().length} cores, load average ${load.map((l) => l.toFixed(2)).join(' ')}`)
  if (load[0] > os.cpus().length) console.log(`WARNING: load average ${load[0].toFixed(2)} is above the core count: these figures are not fit for the README`)
  const redis = await startRedis()
  const children: ChildProcess[] = []
  const clients: Redis[] = []
  try {
    const a = await startChild(['--node', 'node-a', redis.url])
    const b = await startChild(['--node', 'node-b', redis.url])
    const c = await startChild(['--node', 'node-c', redis.url])
    const proxy = await startChild(['--proxy', a.url])
    children.push(a.child, b.child, c.child, proxy.child)
    // B learns of A's images through Redis: wait until it lists them.
    for (;;) {
      const listing = await (await fetch(`${b.url}/images?scope=cluster`)).json() as { images: Array<{ id: string }> }
      if (listing.images.some((d) => d.id === 'frame4k')) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    const dataPath = '/images/frame4k/data'
    const rates = await reads({
      direct: async () => await download(a.url + dataPath),
      proxy: async () => await download(proxy.url + dataPath),
      forward: async () => await download(b.url + dataPath),
      redirect: async () => await download(`${b.url}${dataPath}?redirect=1`),
      pull: async () => (await ask<{ bytes: number }>(b.child, { op: 'pull', node: 'node-a', url: a.url }, 'pulled')).bytes,
    })

    // Commit → event, alternated with raw Redis samples.
    const packr = new Packr({ ...WIRE_OPTIONS })
    const unpackr = new Unpackr({ ...WIRE_OPTIONS })
    const ws = new WebSocket(b.url.replace(/^http/, 'ws') + '/ws', { perMessageDeflate: false })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const arrived = new Map<number, number>()
    ws.on('message', (data: Buffer) => {
      const at = now()
      const m = unpackr.unpack(data) as { op: string, id?: string, generation?: number, type?: string }
      if (m.op === 'event' && m.id === 'tick' && m.type === 'updated') arrived.set(m.generation!, at)
    })
    ws.send(packr.pack({ op: 'subscribe', req: 1, scope: 'cluster', ids: ['tick'], policy: 'all', queue: 4096 }))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const writer = new Redis(redis.url)
    const reader = new Redis(redis.url)
    clients.push(writer, reader)
    // Both connected before the first sample: a reader still connecting would send its XREAD '$' after the
    // writer's XADD and then wait for an entry that never comes.
    await Promise.all([writer.ping(), reader.ping()])
    const lastId = { id: '$' }
    await rawRedisSample(writer, reader, lastId)
    const events: number[] = []
    const raw: number[] = []
    for (let i = 0; i < COMMITS; i++) {
      raw.push(await rawRedisSample(writer, reader, lastId))
      const { at, generation } = await ask<{ at: number, generation: number }>(a.child, { op: 'commit', g: i }, 'committed')
      while (!arrived.has(generation)) await new Promise((resolve) => setTimeout(resolve, 1))
      events.push(arrived.get(generation)! - at)
      await new Promise((resolve) => setTimeout(resolve, SPACING_MS))
    }

    // Where the time goes, in a second series (the reader below is one more process to wake per commit,
    // so it stays out of the first): a third ioredis client reads the cluster's event stream as B does, and
    // each event's way splits at the moment its entry can be read from Redis. A's side: the commit, the
    // publisher's setImmediate, the MULTI. B's side: the XREAD wake-up, the relay, the WebSocket.
    const tap = new Redis(redis.url)
    clients.push(tap)
    await tap.ping()
    const inStream = new Map<number, number>()
    let tapping = true
    const tapped = (async () => {
      let id = '$'
      while (tapping) {
        const reply = await tap.xread('BLOCK', 200, 'STREAMS', EVENTS_KEY, id) as Array<[string, Array<[string, string[]]>]> | null
        const at = now()
        for (const [entryId, fields] of reply?.[0][1] ?? []) {
          id = entryId
          const field = (name: string): string | undefined => fields[fields.indexOf(name) + 1]
          if (field('i') === 'tick' && field('t') === 'updated') inStream.set(Number(field('g')), at)
        }
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const aSide: number[] = []
    const bSide: number[] = []
    for (let i = 0; i < SPLIT_COMMITS; i++) {
      const { at, generation } = await ask<{ at: number, generation: number }>(a.child, { op: 'commit', g: i }, 'committed')
      while (!arrived.has(generation) || !inStream.has(generation)) await new Promise((resolve) => setTimeout(resolve, 1))
      aSide.push(inStream.get(generation)! - at)
      bSide.push(arrived.get(generation)! - inStream.get(generation)!)
      await new Promise((resolve) => setTimeout(resolve, SPACING_MS))
    }
    tapping = false
    await tapped
    ws.close()

    const reading = 'read a 4K RGBA frame (33.2 MB) of node A'
    const latency = 'commit on A -> event at a subscriber on B'
    const rate = (label: string, xs: number[], baseline = false): ResultRow[] => {
      const s = spread(xs)
      return [{ group: reading, label: `${label}, median (min ${sig(s.min)}, max ${sig(s.max)})`, value: sig(s.median), unit: 'MB/s', ...(baseline ? { baseline } : {}) }]
    }
    const ratio = (label: string, xs: number[]): ResultRow => {
      const s = spread(xs)
      return { group: reading, label: `${label} (per-round ratios: min ${s.min.toFixed(2)}, max ${s.max.toFixed(2)})`, value: sig(s.median), unit: 'x' }
    }
    const quantiles = (label: string, xs: number[], baseline = false): ResultRow[] => [
      { group: latency, label: `${label}, p50`, value: sig(percentile(xs, 50)), unit: 'ms', ...(baseline ? { baseline } : {}) },
      { group: latency, label: `${label}, p99 (min ${sig(Math.min(...xs))}, max ${sig(Math.max(...xs))})`, value: sig(percentile(xs, 99)), unit: 'ms' },
    ]
    const rows: ResultRow[] = [
      ...rate('direct download from owner A', rates.direct, true),
      ...rate('plain reverse-proxy hop in front of A (@fastify/reply-from)', rates.proxy),
      ...rate('Pixelport forwarding via node B', rates.forward),
      ...rate('via node B with ?redirect=1 (307 to A, followed)', rates.redirect),
      ...rate('worker replica pull on B (4 MiB ranges)', rates.pull),
      ratio('forwarding via B / plain proxy hop', ratios(rates.forward, rates.proxy)),
      ratio('forwarding via B / direct', ratios(rates.forward, rates.direct)),
      ratio('replica pull / direct', ratios(rates.pull, rates.direct)),
      ...quantiles('raw Redis XADD -> XREAD BLOCK (two ioredis clients)', raw, true),
      ...quantiles('store commit on A -> WebSocket event on B', events),
      ...quantiles('split series: A, commit -> entry read from Redis by a third client', aSide),
      ...quantiles('split series: B, entry read by that client -> WebSocket event on B', bSide),
    ]
    const note = `redis-server, 3 nodes and a reply-from proxy, each its own process, loopback; reads: ${ROUNDS} rounds, the ways alternated; latency: ${COMMITS} commits ${SPACING_MS} ms apart, each beside a raw Redis sample, then ${SPLIT_COMMITS} more with a third client reading the stream (the split); load average at start ${load[0].toFixed(2)}`
    console.log(`\n${note}\n`)
    const width = Math.max(...rows.map((r) => r.label.length))
    console.log(`| ${'measure'.padEnd(width)} | value |`)
    console.log(`| ${'-'.repeat(width)} | ----- |`)
    for (const r of rows) console.log(`| ${r.label.padEnd(width)} | ${r.value} ${r.unit} |`)
    const file = writeResults('cluster', { title: 'Cluster: cross-node reads and events', note, rows })
    console.log(`\nwrote ${file}`)
  } finally {
    for (const client of clients) client.disconnect()
    for (const child of children) child.disconnect()
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    agent.destroy()
    redis.stop()
  }
}

const nodeAt = process.argv.indexOf('--node')
const proxyAt = process.argv.indexOf('--proxy')
if (nodeAt >= 0) await runNode(process.argv[nodeAt + 1], process.argv[nodeAt + 2])
else if (proxyAt >= 0) await runProxy(process.argv[proxyAt + 1])
else await main()
