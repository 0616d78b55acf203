/**
 * Remote transfer benchmark: `npx tsx bench/remote.ts` (or `npm run bench:remote`).
 *
 * One run measures, for an 8 MiB and a 33 MB (4K RGBA) image, the time to get every byte into a fresh
 * buffer in the client process:
 *   - ours:   RemoteClient's `get` over our WebSocket protocol and its `download` over HTTP;
 *   - the best raw clients of the same server: undici's `request` of `GET /images/:id/data` (a keep-alive
 *             Pool, `body.arrayBuffer()`), and a raw `ws` + msgpackr client speaking our protocol;
 *   - plain:  the same bytes over a raw loopback `net` socket, as one plain `ws` binary message, as a
 *             fastify `reply.send(buffer)`, and as a naive `msgpackr.pack({ ..., data })` of a whole frame.
 * Rounds alternate the cases (each round runs every case once), so a burst of load elsewhere on the
 * machine hits all of them alike; min, median and max over the rounds are printed, with the load average.
 * Then descriptor requests (`GET /images/:id`) against a fastify hello-world JSON route under autocannon,
 * and the snapshot memory the server holds while 8 clients get one 33 MB image at once.
 *
 * Servers run in a child process and clients in this one, so sender and receiver each have a core, as
 * they would on a network. Each case runs its transfers back to back, with a full garbage collection on
 * both sides before each one. Besides wall time, the CPU time both processes spent on each transfer is
 * printed: on a shared machine it is the steadier figure.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'
import Fastify from 'fastify'
import { Packr, Unpackr } from 'msgpackr'
import { Pool, request } from 'undici'
import { WebSocketServer } from 'ws'
import type { Io } from '../cli/io.js'
import { pixelport } from '../cli/program.js'
import { RemoteClient } from '../client/remote/index.js'
import { WIRE_OPTIONS } from '../protocol/messages.js'
import { imagePath } from '../protocol/urls.js'
import { createServer } from '../server/server.js'
import { QUICK, sig, writeResults, type ResultRow } from './results.js'
import { httpGet, netClient, rawProtocolClient, wsClient, type Fetcher } from './remote-clients.js'
import { median } from './stats.js'

const MiB = 1024 * 1024
const SIZES = [
  { name: '8 MiB', id: 'img8', width: 1024, height: 2048 },
  { name: '33 MB (4K RGBA)', id: 'img33', width: 3840, height: 2160 },
] as const
/** Rounds (each runs every case once, alternated); at least 5. */
const RUNS = QUICK ? { img8: 5, img33: 5 } : { img8: 15, img33: 9 }
const WARMUP = QUICK ? 1 : 2
const UNDICI = 'undici request (Pool)'
const UNDICI_COPY = 'undici, chunks copied on arrival'
const RAW_WS = 'raw ws + msgpackr, our protocol'
const OURS_WS = 'ours: RemoteClient get (WS)'
const OURS_HTTP = 'ours: RemoteClient download'
const OURS_CLI = 'ours: CLI get (in-process)'

const CANNON_SECONDS = QUICK ? 2 : 5

interface CannonResult { requests: { average: number }, non2xx: number, errors: number }
type Autocannon = (options: { url: string, connections: number, duration: number, pipelining: number }) => Promise<CannonResult>

// ---- server side (child process) ------------------------------------------------------------------

interface Ports { pixelport: number, net: number, ws: number, naive: number, fastify: number }
type Command = { cmd: 'peak-start' } | { cmd: 'peak-stop' } | { cmd: 'fresh', id: string, width: number, height: number } | { cmd: 'gc' } | { cmd: 'cpu' } | { cmd: 'exit' }

/**
 * A full garbage collection, so no case pays for the garbage of the one before it (33 MB buffers: the
 * naive msgpackr case leaves one on each side per transfer). `--expose-gc` at run time: works under tsx.
 */
v8.setFlagsFromString('--expose-gc')
const collectGarbage = vm.runInNewContext('gc') as () => void

function fillPattern (bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i >>> 12) + seed
}

async function serve (): Promise<void> {
  const server = await createServer({ port: 0, capacity: 512 * MiB, blockSize: 64 * MiB, snapshotBytes: 512 * MiB, maxImageBytes: 256 * MiB })
  const url = new URL(await server.listen())
  const payloads = new Map<string, Buffer>()
  for (const s of SIZES) {
    const bytes = Buffer.alloc(s.width * s.height * 4)
    fillPattern(bytes, 1)
    server.store.create({ id: s.id, width: s.width, height: s.height, mode: 'RGBA' }, bytes)
    payloads.set(s.id, bytes)
  }

  const raw = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on('data', (d) => socket.write(payloads.get(d.toString())!))
  })
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))

  const plain = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  plain.on('connection', (ws) => ws.on('message', (d) => ws.send(payloads.get(d.toString())!)))
  await new Promise<void>((resolve) => plain.once('listening', resolve))

  const packr = new Packr({ ...WIRE_OPTIONS })
  const naive = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  naive.on('connection', (ws) => ws.on('message', (d) => {
    const id = d.toString()
    const descriptor = server.store.describe(id)
    ws.send(packr.pack({ op: 'frame', req: 1, stream: 1, descriptor, generation: descriptor.generation, byteLength: descriptor.byteLength, data: payloads.get(id)! }))
  }))
  await new Promise<void>((resolve) => naive.once('listening', resolve))

  const app = Fastify({ logger: false })
  app.get('/hello', async () => ({ hello: 'world' }))
  app.get<{ Params: { id: string } }>('/blob/:id', async (request, reply) => reply.type('application/octet-stream').send(payloads.get(request.params.id)))
  await app.listen({ port: 0, host: '127.0.0.1' })

  let peak = 0
  let atStart = 0
  let sampler: NodeJS.Timeout | null = null
  let copiesAtStart = 0
  process.on('message', async (message: Command) => {
    if (message.cmd === 'peak-start') {
      atStart = peak = server.snapshots.stats().bytes
      copiesAtStart = server.snapshots.stats().copies
      sampler = setInterval(() => { peak = Math.max(peak, server.snapshots.stats().bytes) }, 1)
      process.send!({ ok: true })
    } else if (message.cmd === 'peak-stop') {
      clearInterval(sampler!)
      peak = Math.max(peak, server.snapshots.stats().bytes)
      process.send!({ peak, atStart, copies: server.snapshots.stats().copies - copiesAtStart })
    } else if (message.cmd === 'gc' || message.cmd === 'cpu') {
      if (message.cmd === 'gc') collectGarbage()
      // CPU time used so far: the client reads it before and after each transfer.
      const cpu = process.cpuUsage()
      process.send!({ cpu: (cpu.user + cpu.system) / 1000 })
    } else if (message.cmd === 'fresh') {
      // An image nobody has read yet: no snapshot of it exists, so its readers' cost is all there is to see.
      server.store.create({ id: message.id, width: message.width, height: message.height, mode: 'RGBA' })
      process.send!({ ok: true })
    } else {
      await server.close()
      process.exit(0)
    }
  })
  const ports: Ports = {
    pixelport: Number(url.port),
    net: (raw.address() as net.AddressInfo).port,
    ws: (plain.address() as net.AddressInfo).port,
    naive: (naive.address() as net.AddressInfo).port,
    fastify: (app.server.address() as net.AddressInfo).port,
  }
  process.send!(ports)
}

// ---- client side ----------------------------------------------------------------------------------


function call<T> (child: ChildProcess, command: Command): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T))
    child.send(command)
  })
}

/** min, median and max of `xs`, in that order. */
function spread (xs: number[]): [number, number, number] {
  return [Math.min(...xs), median(xs), Math.max(...xs)]
}

/** `pixelport get ID -o - --format raw` in this process; resolves with the bytes written to its stdout. */
async function cliGet (base: string, id: string): Promise<number> {
  let written = 0
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { written += chunk.byteLength; done() } })
  const io: Io = { stdin: Readable.from([]), stdout: sink, stderr: new Writable({ write (_c, _e, done) { done() } }), env: {} }
  const code = await pixelport(['--url', base, 'get', id, '-o', '-', '--format', 'raw'], io)
  if (code !== 0) throw new Error(`pixelport get exited ${code}`)
  return written
}

function pad (s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

async function main (): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ports = await new Promise<Ports>((resolve) => child.once('message', (m) => resolve(m as Ports)))
  const base = `http://127.0.0.1:${ports.pixelport}`
  const load = os.loadavg()
  const cores = os.cpus().length
  console.log(`Pixelport remote benchmark — Node ${process.version}, ${cores} cores, load average ${load.map((l) => l.toFixed(2)).join(' ')}`)
  if (load[0] > cores) console.log(`WARNING: load average ${load[0].toFixed(2)} is above the ${cores} cores: these figures are not fit to quote.`)
  console.log('Time to receive every byte of one image into a fresh buffer in another process; MB = 10^6 bytes.\n')

  const unpackr = new Unpackr({ ...WIRE_OPTIONS })
  const remote = await RemoteClient.connect(`ws://127.0.0.1:${ports.pixelport}/ws`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const pool = new Pool(base, { connections: 1 })
  const undiciGet = async (id: string): Promise<number> => {
    const res = await request(base + imagePath(id, '/data'), { dispatcher: pool })
    return (await res.body.arrayBuffer()).byteLength
  }
  // The other way to collect a body, which BodySink measured itself against: each chunk copied into one
  // fresh buffer of Content-Length bytes as it arrives (the ratio line "undici: joined at the end vs copied on arrival").
  const undiciCopyOnArrival = async (id: string): Promise<number> => {
    const res = await request(base + imagePath(id, '/data'), { dispatcher: pool })
    const length = Number(res.headers['content-length'])
    const memory = Buffer.allocUnsafeSlow(length)
    let at = 0
    res.body.on('data', (chunk: Buffer) => { memory.set(chunk, at); at += chunk.byteLength })
    await once(res.body, 'end')
    return at
  }
  const reused = Buffer.alloc(SIZES[1].width * SIZES[1].height * 4)
  const cases: Array<[string, Fetcher]> = [
    ['raw net socket', await netClient(ports.net)],
    ['plain ws message', await wsClient(ports.ws, (d) => d.length)],
    ['fastify reply.send(buffer)', async (id) => await httpGet(agent, ports.fastify, `/blob/${id}`)],
    [UNDICI, undiciGet],
    [UNDICI_COPY, undiciCopyOnArrival],
    [RAW_WS, await rawProtocolClient(`ws://127.0.0.1:${ports.pixelport}/ws`)],
    [OURS_WS, async (id) => (await remote.get(id)).bytes.byteLength],
    [OURS_HTTP, async (id) => (await remote.download(id)).bytes.byteLength],
    // The CLI's `get ID -o - --format raw`, run in this process (no Node.js start-up), its stdout a sink.
    [OURS_CLI, async (id) => await cliGet(base, id)],
    // Receiving into one buffer reused across transfers: the transport alone, without the cost of
    // allocating and faulting in fresh memory (large on this kind of VM; plain ws cannot do this).
    ['raw net socket, reused buffer', await netClient(ports.net, reused)],
    ['fastify send, reused buffer', async (id) => await httpGet(agent, ports.fastify, `/blob/${id}`, reused)],
    ['ours: WS get, reused buffer', async (id) => (await remote.get(id, { into: reused })).bytes.byteLength],
    ['ours: download, reused buffer', async (id) => (await remote.download(id, { into: reused })).bytes.byteLength],
    // Last in each round: it leaves large garbage on both sides.
    ['naive msgpackr.pack(frame)', await wsClient(ports.naive, (d) => (unpackr.unpack(d) as { data: Buffer }).data.length)],
  ]

  const results = new Map<string, Map<string, number>>()
  for (const s of SIZES) {
    const size = s.width * s.height * 4
    const times = new Map<string, number[]>(cases.map(([name]) => [name, []]))
    const cpus = new Map<string, number[]>(cases.map(([name]) => [name, []]))
    // Round by round, every case once per round, with a full collection on both sides before each
    // transfer, so no case pays for another's garbage and load that comes and goes hits every case.
    for (let run = 0; run < WARMUP + RUNS[s.id]; run++) {
      for (const [name, fetcher] of cases) {
        collectGarbage()
        const { cpu: serverBefore } = await call<{ cpu: number }>(child, { cmd: 'gc' })
        const clientBefore = process.cpuUsage()
        const t0 = performance.now()
        const got = await fetcher(s.id, size)
        const ms = performance.now() - t0
        const clientCpu = process.cpuUsage(clientBefore)
        if (got !== size) throw new Error(`${name}: got ${got} of ${size} bytes`)
        if (run >= WARMUP) {
          const { cpu: serverAfter } = await call<{ cpu: number }>(child, { cmd: 'cpu' })
          times.get(name)!.push(ms)
          cpus.get(name)!.push((clientCpu.user + clientCpu.system) / 1000 + serverAfter - serverBefore)
        }
      }
    }
    const medians = new Map([...times].map(([name, xs]) => [name, median(xs)]))
    const cpuMedians = new Map([...cpus].map(([name, xs]) => [name, median(xs)]))
    results.set(s.id, medians)
    const rawMs = medians.get('raw net socket')!
    const wsMs = medians.get('plain ws message')!
    const fastifyMs = medians.get('fastify reply.send(buffer)')!
    console.log(`${s.name}: ${size} bytes, ${RUNS[s.id]} alternated rounds`)
    console.log(`  ${pad('', 31)} ${pad('ms min / median / max', 24)} ${pad('MB/s', 8)} ${pad('vs raw', 8)} ${pad('vs ws', 8)} ${pad('vs fastify', 11)} CPU ms (client+server)`)
    for (const [name, xs] of times) {
      const [min, ms, max] = spread(xs)
      const rate = size / 1e6 / (ms / 1000)
      console.log(`  ${pad(name, 31)} ${pad(`${min.toFixed(1)} / ${ms.toFixed(1)} / ${max.toFixed(1)}`, 24)} ${pad(rate.toFixed(0), 8)} ${pad((rawMs / ms).toFixed(2) + 'x', 8)} ${pad((wsMs / ms).toFixed(2) + 'x', 8)} ${pad((fastifyMs / ms).toFixed(2) + 'x', 11)} ${cpuMedians.get(name)!.toFixed(1)}`)
    }
    // Ours against the best raw client, round by round (the same round ran both): min / median / max.
    const versus = (ours: string, anchor: string): string => {
      const ratios = times.get(ours)!.map((ms, i) => times.get(anchor)![i] / ms)
      return spread(ratios).map((r) => r.toFixed(2) + 'x').join(' / ')
    }
    console.log(`  RemoteClient download vs undici request (≥ 0.9x), min / median / max per round: ${versus(OURS_HTTP, UNDICI)}`)
    console.log(`  RemoteClient get vs raw ws + msgpackr (≥ 0.9x), min / median / max per round: ${versus(OURS_WS, RAW_WS)}`)
    console.log(`  undici: joined at the end vs copied on arrival, min / median / max per round: ${versus(UNDICI, UNDICI_COPY)}`)
    console.log(`  CLI get vs undici request, min / median / max per round: ${versus(OURS_CLI, UNDICI)}`)
    console.log()
  }

  // Descriptor requests under load.
  // autocannon ships no types; it is loaded by name and given the small type above.
  const autocannon = (await import('autocannon' as string) as { default: Autocannon }).default
  const cannon = async (url: string): Promise<number> => {
    const result = await autocannon({ url, connections: 10, duration: CANNON_SECONDS, pipelining: 1 })
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
    return result.requests.average
  }
  await cannon(`${base}/images/img8`) // warm-up
  const hello = await cannon(`http://127.0.0.1:${ports.fastify}/hello`)
  const descriptor = await cannon(`${base}/images/img8`)
  console.log(`Descriptor requests (autocannon, 10 connections, ${CANNON_SECONDS} s, requests/s average)`)
  console.log(`  fastify hello-world JSON     ${hello.toFixed(0)}`)
  console.log(`  ours: GET /images/:id        ${descriptor.toFixed(0)}  (${(descriptor / hello).toFixed(2)}x)\n`)

  // Snapshot memory with 8 concurrent clients of one 33 MB image that has no snapshot yet.
  const big = SIZES[1]
  const bigSize = big.width * big.height * 4
  const clients = await Promise.all(Array.from({ length: 8 }, async () => await RemoteClient.connect(`ws://127.0.0.1:${ports.pixelport}/ws`)))
  await call(child, { cmd: 'fresh', id: 'peak', width: big.width, height: big.height })
  await call(child, { cmd: 'peak-start' })
  const t0 = performance.now()
  await Promise.all(clients.map(async (c) => await c.get('peak')))
  const allMs = performance.now() - t0
  const { peak, atStart, copies } = await call<{ peak: number, atStart: number, copies: number }>(child, { cmd: 'peak-stop' })
  const extra = peak - atStart
  console.log('8 concurrent WebSocket gets of one 33 MB image (not read before: no snapshot of it yet)')
  console.log(`  snapshot memory: ${atStart} bytes before (idle snapshots of the images above), peak ${peak}: +${extra} bytes = ${(extra / bigSize).toFixed(2)} image(s) for all 8; ${copies} copy made`)
  console.log(`  all 8 done in ${allMs.toFixed(0)} ms (${(8 * bigSize / 1e6 / (allMs / 1000)).toFixed(0)} MB/s in total)\n`)

  const r8 = results.get('img8')!
  const r33 = results.get('img33')!
  const ratio = (m: Map<string, number>, ours: string, other: string): string => (m.get(other)! / m.get(ours)!).toFixed(2) + 'x'
  console.log('Targets')
  console.log(`  WebSocket get vs plain ws message  ≥ 1.0x: 8 MiB ${ratio(r8, OURS_WS, 'plain ws message')}, 33 MB ${ratio(r33, OURS_WS, 'plain ws message')}`)
  console.log(`  WebSocket get vs raw socket (stretch ≥ 0.6x): 8 MiB ${ratio(r8, OURS_WS, 'raw net socket')}, 33 MB ${ratio(r33, OURS_WS, 'raw net socket')}` +
    ` (both into a reused buffer: 8 MiB ${ratio(r8, 'ours: WS get, reused buffer', 'raw net socket, reused buffer')}, 33 MB ${ratio(r33, 'ours: WS get, reused buffer', 'raw net socket, reused buffer')})`)
  console.log(`  HTTP download vs fastify reply.send ≥ 0.9x: 8 MiB ${ratio(r8, OURS_HTTP, 'fastify reply.send(buffer)')}, 33 MB ${ratio(r33, OURS_HTTP, 'fastify reply.send(buffer)')}`)
  console.log(`  RemoteClient download vs undici request ≥ 0.9x: 8 MiB ${ratio(r8, OURS_HTTP, UNDICI)}, 33 MB ${ratio(r33, OURS_HTTP, UNDICI)}`)
  console.log(`  RemoteClient get vs raw ws + msgpackr  ≥ 0.9x: 8 MiB ${ratio(r8, OURS_WS, RAW_WS)}, 33 MB ${ratio(r33, OURS_WS, RAW_WS)}`)
  console.log(`  GET /images/:id vs hello-world      ≥ 0.8x: ${(descriptor / hello).toFixed(2)}x`)
  console.log(`  8 clients of one 33 MB image        ≤ 1 snapshot of extra memory: ${(extra / bigSize).toFixed(2)}`)

  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  writeStructured(results, { hello, descriptor, extraImages: extra / bigSize, allMs })
  for (const c of [remote, ...clients]) await c.close()
  agent.destroy()
  await pool.close()
  child.send({ cmd: 'exit' })
  await new Promise((resolve) => child.once('exit', resolve))
  process.exit(0)
}

/** bench/results/remote.json: throughput per transport and size (table + chart), descriptor requests, snapshot memory. */
function writeStructured (results: Map<string, Map<string, number>>, other: { hello: number, descriptor: number, extraImages: number, allMs: number }): void {
  const rows: ResultRow[] = []
  const mbps = (s: typeof SIZES[number], ms: number): number => sig(s.width * s.height * 4 / 1e6 / (ms / 1000))
  for (const s of SIZES) {
    for (const [name, ms] of results.get(s.id)!) {
      rows.push({ group: `${s.name}: into another process (median throughput)`, label: name, value: mbps(s, ms), unit: 'MB/s', ...(name === 'raw net socket' ? { baseline: true } : {}) })
    }
  }
  rows.push(
    { group: 'descriptor requests (autocannon, 10 connections)', label: 'fastify hello-world JSON', value: Math.round(other.hello), unit: 'req/s', baseline: true },
    { group: 'descriptor requests (autocannon, 10 connections)', label: 'ours: GET /images/:id', value: Math.round(other.descriptor), unit: 'req/s' },
    { group: '8 concurrent WebSocket gets of one 33 MB image', label: 'extra snapshot memory (images)', value: sig(other.extraImages), unit: 'x' },
    { group: '8 concurrent WebSocket gets of one 33 MB image', label: 'all 8 done', value: sig(other.allMs), unit: 'ms' },
  )
  const cases = [...results.get(SIZES[0].id)!.keys()]
  writeResults('remote', {
    title: 'Remote transfer (npm run bench:remote)',
    note: 'Every byte of one image into a buffer in another process over loopback (server and client each in their own process); MB = 10^6 bytes.',
    rows,
    charts: [{
      file: 'stream-throughput',
      chart: {
        kind: 'bar',
        title: 'Getting one image into another process',
        subtitle: 'median throughput over loopback; Pixelport (ours) against the raw transports it is built on',
        categories: cases,
        value: { label: 'throughput', unit: 'MB/s' },
        series: SIZES.map((s) => ({ name: s.name, values: cases.map((c) => mbps(s, results.get(s.id)!.get(c)!)) })),
      },
    }],
  })
}

if (process.argv.includes('--serve')) await serve()
else await main()
