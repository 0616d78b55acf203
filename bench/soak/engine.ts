/**
 * The soak engine: a real server on loopback, HTTP clients (HttpClient), WebSocket clients (RemoteClient,
 * half of them also subscribed with data) and worker-thread writers, all creating, writing, reading,
 * subscribing and deleting at once for a bounded time. Every frame delivered is checked (checks.ts); at
 * the end every acknowledged write must read back exactly, and once everything is deleted and every
 * client gone the server's memory must be back where it started. Both kinds of client run the one loop
 * of client-loop.ts over a transport (transports.ts).
 */
import { statSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { HttpClient, RemoteClient, type RemoteSubscription } from '../../client/remote/index.js'
import { imagePath } from '../../protocol/urls.js'
import { createServer, type PixelportServer } from '../../server/server.js'
import { Ledger, type Entry } from './checks.js'
import { clientLoop, seeded } from './client-loop.js'
import { hostileClient } from './hostile.js'
import { errorCode, Meter, type SoakReport } from './report.js'
import { httpTransport, wsTransport } from './transports.js'

export interface SoakOptions {
  seconds: number
  http: number
  ws: number
  workers: number
  /** Hostile clients (bench/soak/hostile.ts): stalled uploads, cross-site upgrades, absolute-form targets, … (default 0). */
  hostile?: number
  /** Seed for the clients' choices (default 1). */
  seed?: number
  /** Progress lines (default: none). */
  log?: (line: string) => void
}

const WORKER_SIZE: [number, number] = [128, 96]
const CHUNK = 4096
/** The server's upload idle timeout in the soak: short, so stalled uploads are ended many times over. */
const UPLOAD_IDLE_MS = 500

/** The worker script: built JS next to this module, or (under tap, running sources) the build if fresh. */
function workerEntry (): { url: URL, execArgv: string[] } {
  const here = new URL(import.meta.url)
  if (here.pathname.endsWith('.js')) return { url: new URL('./worker-writer.js', here), execArgv: [] }
  const source = new URL('./worker-writer.ts', here)
  const built = new URL('../../dist/bench/soak/worker-writer.js', here)
  try {
    if (statSync(built).mtimeMs >= statSync(source).mtimeMs) return { url: built, execArgv: [] }
  } catch {}
  return { url: source, execArgv: process.execArgv }
}

interface Memory extends Record<string, number> {
  used: number, images: number, views: number, retired: number, slots: number,
  snapshots: number, snapshotBytes: number, wsStaging: number, wsConnections: number, workerConnections: number,
  uploads: number, uploadStaging: number,
}

function memoryOf (server: PixelportServer): Memory {
  const s = server.store.stats()
  const snap = server.snapshots.stats()
  return {
    used: s.used,
    images: s.images,
    views: s.views,
    retired: s.retired,
    slots: server.store.table.slotsInUse,
    snapshots: snap.snapshots,
    snapshotBytes: snap.bytes,
    wsStaging: server.app.pixelportWebSocket.stagingBytes,
    wsConnections: server.app.pixelportWebSocket.connections,
    workerConnections: server.workers.stats().connections,
    uploads: server.uploads.stats().uploads,
    uploadStaging: server.uploads.stats().bytes,
  }
}

export async function runSoak (options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {})
  const server = await createServer({
    port: 0,
    host: '127.0.0.1',
    blockSize: 16 * 1024 * 1024,
    capacity: 512 * 1024 * 1024,
    chunkSize: CHUNK,
    // Load shedding would turn a busy loopback soak into 503s; it has its own test.
    maxEventLoopDelayMs: 0,
    uploadIdleTimeoutMs: UPLOAD_IDLE_MS,
  })
  try {
    const base = await server.listen()
    const wsUrl = base.replace(/^http/, 'ws') + '/ws'
    const start = memoryOf(server)
    const ledger = new Ledger()
    const meter = new Meter()
    const expected = new Map<string, number>()
    const counters = { workerCommits: 0, events: 0 }
    const attacks = new Map<string, number>()
    const deadline = performance.now() + options.seconds * 1000
    const running = (): boolean => performance.now() < deadline

    /** A read failed: NOT_FOUND of an image whose delete has begun is expected; anything else is not. */
    const readFailed = (where: string, entry: Entry, err: unknown): void => {
      const code = errorCode(err)
      if (code === 'PXP_ERR_NOT_FOUND' && entry.deleted) expected.set(code, (expected.get(code) ?? 0) + 1)
      else ledger.violation(`${where} ${entry.id}: ${code} ${(err as Error).message ?? ''}`.slice(0, 300))
    }

    // ---- worker writers ----------------------------------------------------------------------------
    const entry = workerEntry()
    const workers: Array<{ worker: Worker, done: Promise<void>, exited: Promise<number> }> = []
    for (let k = 0; k < options.workers; k++) {
      const owner = `worker${k}`
      const worker = server.spawnWorker(entry.url, {
        execArgv: entry.execArgv,
        workerData: { soak: { tag: 1000 + k, prefix: `w${k}`, width: WORKER_SIZE[0], height: WORKER_SIZE[1], pauseMs: 1 } },
      })
      let finished!: () => void
      const done = new Promise<void>((resolve) => { finished = resolve })
      worker.on('message', (msg: { op: string, id: string, version: number, width: number, height: number, acked: Record<string, number> }) => {
        if (msg.op === 'created') {
          ledger.add({ id: msg.id, owner, width: msg.width, height: msg.height, acked: 1, sent: null, deleted: false })
        } else if (msg.op === 'acked') {
          counters.workerCommits++
          const e = ledger.entries.get(msg.id)
          if (e !== undefined) e.acked = Math.max(e.acked, msg.version)
        } else if (msg.op === 'done') {
          for (const [id, version] of Object.entries(msg.acked)) {
            const e = ledger.entries.get(id)
            if (e !== undefined) e.acked = version
          }
          finished()
        }
      })
      worker.on('error', (err) => { ledger.violation(`${owner} crashed: ${err.message}`); finished() })
      const exited = new Promise<number>((resolve) => worker.once('exit', (code) => { finished(); resolve(code) }))
      workers.push({ worker, done, exited })
    }

    // ---- clients: one loop over either transport -------------------------------------------------
    const http = new HttpClient(base)
    const loop = { ledger, meter, running, readFailed }
    // ---- WebSocket clients -------------------------------------------------------------------------
    const remotes: RemoteClient[] = []
    const subscribers: Array<Promise<void>> = []

    /** Every frame of every created/updated event: whole, its own generation, generations never going back. */
    async function consume (sub: RemoteSubscription, name: string): Promise<void> {
      const last = new Map<string, number>()
      try {
        for await (const ev of sub) {
          counters.events++
          if (ev.type === 'deleted' || ev.frame === undefined) continue
          const generation = ev.frame.generation
          if (generation < (last.get(ev.id) ?? -1)) ledger.violation(`${name} event ${ev.id}: generation ${generation} after ${last.get(ev.id)}`)
          last.set(ev.id, generation)
          ledger.checkRead(`${name} event`, { id: ev.id, width: ev.descriptor.width, height: ev.descriptor.height }, ev.frame.bytes, generation)
        }
      } catch (err) {
        if (running() || errorCode(err) !== 'PXP_ERR_CLOSED') ledger.violation(`${name} subscription: ${errorCode(err)}`)
      }
    }

    async function wsClient (k: number): Promise<void> {
      const owner = `ws${k}`
      const client = await RemoteClient.connect(wsUrl, { clientName: owner })
      remotes.push(client)
      if (k % 2 === 0) subscribers.push(consume(await client.subscribe({ data: true, policy: 'latest' }), owner))
      await clientLoop(owner, 500 + k, seeded((options.seed ?? 1) * 1000 + 500 + k), wsTransport(client), loop)
    }

    log(`soak: ${options.seconds} s against ${base} (${options.http} HTTP, ${options.ws} WebSocket, ${options.workers} workers, ${options.hostile ?? 0} hostile)`)
    const progress = setInterval(() => log(`  ${meter.requests} requests, ${counters.workerCommits} worker commits, ${counters.events} events, ${ledger.violations.length} violations`), 5000)
    try {
      await Promise.all([
        ...Array.from({ length: options.http }, async (_, k) => await clientLoop(`http${k}`, k, seeded((options.seed ?? 1) * 1000 + k), httpTransport(http), loop)),
        ...Array.from({ length: options.ws }, async (_, k) => await wsClient(k)),
        ...Array.from({ length: options.hostile ?? 0 }, async (_, k) => await hostileClient(k, Number(new URL(base).port), UPLOAD_IDLE_MS, {
          violation: (what) => ledger.violation(what),
          count: (attack, outcome) => { const key = `${attack}: ${outcome}`; attacks.set(key, (attacks.get(key) ?? 0) + 1) },
          running,
        })),
      ])
    } finally {
      clearInterval(progress)
    }

    // ---- the end: stop the writers, then every acknowledged write must read back exactly -----------
    log('clients done; stopping the worker writers')
    for (const w of workers) w.worker.postMessage('stop')
    await Promise.all(workers.map(async (w) => await w.done))
    for (const w of workers) {
      const code = await w.exited
      if (code !== 0) ledger.violation(`a worker writer exited with ${code}`)
    }
    const checker = await RemoteClient.connect(wsUrl, { clientName: 'soak-final-check' })
    let finalChecked = 0
    for (const e of ledger.entries.values()) {
      if (e.deleted) continue
      let got: { bytes: Uint8Array, generation: number }
      try {
        got = await httpTransport(http).get(e.id)
      } catch (err) {
        ledger.violation(`final http get ${e.id}: ${errorCode(err)} (acknowledged version ${e.acked} lost)`)
        continue
      }
      const { generation } = got
      ledger.checkRead('final http get', e, got.bytes, generation, e.acked, e.sent ?? e.acked)
      const frame = await checker.get(e.id)
      ledger.checkRead('final ws get', e, frame.bytes, frame.generation, e.acked, e.sent ?? e.acked)
      if (e.sent === null && e.owner.startsWith('worker') && generation !== e.acked) ledger.violation(`final ${e.id}: generation ${generation}, last acknowledged ${e.acked}`)
      finalChecked++
    }
    log(`final check: ${finalChecked} images read back over HTTP and WebSocket`)

    log('cleanup')
    // ---- cleanup: delete everything, close every client; memory must come back ----------------------
    for (const e of [...ledger.entries.values()]) {
      const res = await http.send('DELETE', imagePath(e.id))
      if (res.status !== 204 && !e.deleted) ledger.violation(`cleanup delete ${e.id}: ${res.status}`)
    }
    await checker.close()
    await http.close()
    await Promise.all(remotes.map(async (c) => await c.close()))
    await Promise.all(subscribers)
    let end = memoryOf(server)
    const settled = (m: Memory): boolean => m.used === start.used && m.images === start.images && m.views === start.views && m.retired === 0 &&
      m.slots === start.slots && m.snapshots === 0 && m.snapshotBytes === 0 && m.wsStaging === 0 && m.wsConnections === 0 && m.workerConnections === 0 &&
      m.uploads === 0 && m.uploadStaging === 0
    for (let i = 0; i < 500 && !settled(end); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      end = memoryOf(server)
    }
    if (!settled(end)) ledger.violation(`memory not returned: start ${JSON.stringify(start)}, end ${JSON.stringify(end)}`)

    const report: SoakReport = {
      seconds: options.seconds,
      clients: { http: options.http, ws: options.ws, workers: options.workers, hostile: options.hostile ?? 0 },
      attacks: Object.fromEntries([...attacks].sort(([a], [b]) => a.localeCompare(b))),
      requests: meter.requests,
      operations: meter.summary(),
      errors: Object.fromEntries(meter.errors),
      expectedErrors: Object.fromEntries(expected),
      workerCommits: counters.workerCommits,
      eventsReceived: counters.events,
      framesChecked: ledger.framesChecked,
      torn: ledger.torn,
      memory: { start, end },
      violations: ledger.violations,
    }
    return report
  } finally {
    await server.close()
  }
}
