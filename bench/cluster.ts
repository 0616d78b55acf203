/**
 * Cluster benchmark: `npm run bench:cluster` (or `npx tsx bench/cluster.ts`).
 *
 * A real redis-server and three Pixelport nodes (A, B, C), each in its own process, on loopback. Measures:
 *   - a cross-node read: `GET /images/:id/data` of a 4K RGBA frame (33.2 MB) on node B, which streams it
 *     from its owner A, next to the same download straight from A (MB/s both, and the ratio);
 *   - commit on A → event at a cluster-scope WebSocket subscriber on node B (p50/p99 over 200 commits),
 *     the commit being an HTTP PUT to A (its round trip alone is printed next to it, for reference).
 * Prints a table and writes bench/results/cluster.json ({ name, rows: [{ label, value, unit }] }).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Packr, Unpackr } from 'msgpackr'
import { WebSocket } from 'ws'
import { WIRE_OPTIONS } from '../protocol/messages.js'
import { createServer } from '../server/server.js'
import { QUICK, sig, writeResults, type ResultRow } from './results.js'

const WIDTH = 3840
const HEIGHT = 2160
const FRAME_BYTES = WIDTH * HEIGHT * 4
const READ_RUNS = QUICK ? 3 : 12
const WARMUP = QUICK ? 1 : 2
const COMMITS = QUICK ? 20 : 200
/** Commits spaced wider than the coalescing window (20 ms), so each one is flushed on its own. */
const SPACING_MS = 30


// ---- a node (child process) -------------------------------------------------------------------------

async function runNode (nodeId: string, redis: string): Promise<void> {
  const server = await createServer({
    port: 0,
    capacity: 512 << 20,
    cluster: { redis, nodeId },
  })
  const url = await server.listen()
  if (nodeId === 'node-a') {
    const frame = new Uint8Array(FRAME_BYTES)
    for (let i = 0; i < frame.length; i += 4096) frame[i] = i & 0xff
    server.store.create({ id: 'frame4k', width: WIDTH, height: HEIGHT, mode: 'RGBA' }, frame)
    server.store.create({ id: 'tick', width: 16, height: 16, mode: 'L' })
  }
  process.send!({ url, joined: server.cluster!.hasJoined })
  process.on('disconnect', () => { void server.close().then(() => process.exit(0)) })
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

async function startNode (nodeId: string, redis: string): Promise<{ child: ChildProcess, url: string }> {
  const child = fork(fileURLToPath(import.meta.url), ['--node', nodeId, redis], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const { url } = await new Promise<{ url: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string }))
    child.once('exit', (code) => reject(new Error(`${nodeId} exited with ${code}`)))
  })
  return { child, url }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })

/** GET url, counting the bytes (the transport, not the allocation of a destination). */
async function download (url: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode}`))
      let n = 0
      res.on('data', (chunk: Buffer) => { n += chunk.byteLength })
      res.on('end', () => resolve(n))
      res.on('error', reject)
    }).on('error', reject)
  })
}

async function put (url: string, body: Uint8Array): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.byteLength } }, (res) => {
      res.resume()
      res.on('end', () => res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${res.statusCode}`)))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function quantile (xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

/**
 * Direct and cross-node downloads alternated run by run, so both see the same machine load; the ratio is
 * the median of the per-pair ratios.
 */
async function readThroughput (direct: string, viaB: string): Promise<{ direct: number, viaB: number, ratio: number }> {
  for (let i = 0; i < WARMUP; i++) { await download(direct); await download(viaB) }
  const rate = async (url: string): Promise<number> => {
    const t0 = performance.now()
    const n = await download(url)
    if (n !== FRAME_BYTES) throw new Error(`${url}: ${n} bytes`)
    return n / 1e6 / ((performance.now() - t0) / 1000)
  }
  const d: number[] = []
  const b: number[] = []
  const ratios: number[] = []
  for (let i = 0; i < READ_RUNS; i++) {
    d.push(await rate(direct))
    b.push(await rate(viaB))
    ratios.push(b[i] / d[i])
  }
  return { direct: quantile(d, 0.5), viaB: quantile(b, 0.5), ratio: quantile(ratios, 0.5) }
}

async function main (): Promise<void> {
  console.log(`Pixelport cluster benchmark — Node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  const redis = await startRedis()
  const nodes: ChildProcess[] = []
  try {
    const a = await startNode('node-a', redis.url)
    const b = await startNode('node-b', redis.url)
    const c = await startNode('node-c', redis.url)
    nodes.push(a.child, b.child, c.child)
    // B learns of A's images through Redis: wait until it lists them.
    for (;;) {
      const listing = await (await fetch(`${b.url}/images?scope=cluster`)).json() as { images: Array<{ id: string }> }
      if (listing.images.some((d) => d.id === 'frame4k')) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    const reads = await readThroughput(`${a.url}/images/frame4k/data`, `${b.url}/images/frame4k/data`)

    // Commit → event latency.
    const packr = new Packr({ ...WIRE_OPTIONS })
    const unpackr = new Unpackr({ ...WIRE_OPTIONS })
    const ws = new WebSocket(b.url.replace(/^http/, 'ws') + '/ws', { perMessageDeflate: false })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const seen = new Map<number, number>()
    let wake: (() => void) | null = null
    ws.on('message', (data: Buffer) => {
      const m = unpackr.unpack(data) as { op: string, id?: string, generation?: number, type?: string }
      if (m.op === 'event' && m.id === 'tick' && m.type === 'updated') {
        seen.set(m.generation!, performance.now())
        wake?.()
      }
    })
    ws.send(packr.pack({ op: 'subscribe', req: 1, scope: 'cluster', ids: ['tick'], policy: 'all', queue: 4096 }))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const body = new Uint8Array(256)
    const latencies: number[] = []
    const putTimes: number[] = []
    for (let g = 1; g <= COMMITS; g++) {
      body.fill(g & 0xff)
      const t0 = performance.now()
      await put(`${a.url}/images/tick/data`, body)
      putTimes.push(performance.now() - t0)
      while (!seen.has(g)) await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 1000) })
      latencies.push(seen.get(g)! - t0)
      await new Promise((resolve) => setTimeout(resolve, SPACING_MS))
    }
    ws.close()

    const reading = 'read a 4K RGBA frame (33.2 MB)'
    const latency = 'commit on A -> event at a subscriber on B'
    const rows: ResultRow[] = [
      { group: reading, label: 'direct download from owner A', value: sig(reads.direct), unit: 'MB/s', baseline: true },
      { group: reading, label: 'cross-node read via B (streamed from A)', value: sig(reads.viaB), unit: 'MB/s' },
      { group: reading, label: 'cross-node / direct (median of paired runs)', value: sig(reads.ratio), unit: 'x' },
      { group: latency, label: 'HTTP PUT on A -> event on B, p50', value: sig(quantile(latencies, 0.5)), unit: 'ms' },
      { group: latency, label: 'HTTP PUT on A -> event on B, p99', value: sig(quantile(latencies, 0.99)), unit: 'ms' },
      { group: latency, label: 'HTTP PUT round trip alone, p50 (included above)', value: sig(quantile(putTimes, 0.5)), unit: 'ms', baseline: true },
    ]
    console.log(`\n3 nodes + redis-server, each its own process, loopback; reads: median of ${READ_RUNS}, direct and via B alternated; latency: ${COMMITS} commits ${SPACING_MS} ms apart\n`)
    const width = Math.max(...rows.map((r) => r.label.length))
    console.log(`| ${'measure'.padEnd(width)} | value |`)
    console.log(`| ${'-'.repeat(width)} | ----- |`)
    for (const r of rows) console.log(`| ${r.label.padEnd(width)} | ${r.value} ${r.unit} |`)
    const file = writeResults('cluster', {
      title: 'Cluster: cross-node reads and events',
      note: `redis-server and 3 nodes, each its own process, on loopback; reads: median of ${READ_RUNS}, direct and via B alternated; latency: ${COMMITS} commits ${SPACING_MS} ms apart`,
      rows,
    })
    console.log(`\nwrote ${file}`)
  } finally {
    for (const child of nodes) child.disconnect()
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const child of nodes) if (child.exitCode === null) child.kill('SIGKILL')
    agent.destroy()
    redis.stop()
  }
}

const nodeAt = process.argv.indexOf('--node')
if (nodeAt >= 0) await runNode(process.argv[nodeAt + 1], process.argv[nodeAt + 2])
else await main()
