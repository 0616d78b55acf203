/**
 * The soak engine: a real server on loopback, HTTP clients (fetch), WebSocket clients (RemoteClient, half
 * of them also subscribed with data) and worker-thread writers, all creating, writing, reading,
 * subscribing and deleting at once for a bounded time. Every frame delivered is checked (checks.ts); at
 * the end every acknowledged write must read back exactly, and once everything is deleted and every
 * client gone the server's memory must be back where it started.
 */
import { statSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { RemoteClient, type RemoteSubscription } from '../../client/remote/index.js'
import { createServer, type PixelportServer } from '../../server/server.js'
import { Ledger, type Entry } from './checks.js'
import { makeFrame } from './frames.js'
import { hostileClient } from './hostile.js'
import { errorCode, Meter, type SoakReport } from './report.js'

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

/** Image sizes the clients pick from (mode L): all larger than the 4 KiB chunk, so WebSocket puts stream. */
const SIZES: Array<[number, number]> = [[64, 96], [128, 64], [256, 128]]
const WORKER_SIZE: [number, number] = [128, 96]
const CHUNK = 4096
/** The server's upload idle timeout in the soak: short, so stalled uploads are ended many times over. */
const UPLOAD_IDLE_MS = 500

/** mulberry32: small, seeded, good enough to pick operations. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

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

class HttpError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

/** A PXP error code from a failed response (its JSON body), as an exception. */
async function failed (res: Response): Promise<HttpError> {
  const text = await res.text()
  let code = `HTTP_${res.status}`
  try { code = JSON.parse(text).code ?? code } catch {}
  return new HttpError(res.status, code, text.slice(0, 200))
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

    // ---- HTTP clients ------------------------------------------------------------------------------
    const imageUrl = (id: string): string => `${base}/images/${encodeURIComponent(id)}`

    async function httpClient (k: number): Promise<void> {
      const random = seeded((options.seed ?? 1) * 1000 + k)
      const owner = `http${k}`
      const tag = k
      const owned: Entry[] = []
      let serial = 0
      while (running()) {
        const r = random()
        try {
          if (owned.length < 2 || (r < 0.08 && owned.length < 4)) {
            const [width, height] = SIZES[Math.floor(random() * SIZES.length)]
            const id = `${owner}/${serial++}`
            const body = makeFrame(width, height, 0, tag)
            await meter.time('http create (POST raw)', async () => {
              const res = await fetch(`${base}/images?width=${width}&height=${height}&mode=L&id=${encodeURIComponent(id)}`, {
                method: 'POST', body, headers: { 'content-type': 'application/octet-stream' },
              })
              if (res.status !== 201) throw await failed(res)
              await res.arrayBuffer()
            })
            const e: Entry = { id, owner, width, height, acked: 0, sent: 0, deleted: false }
            ledger.add(e)
            owned.push(e)
          } else if (r < 0.14) {
            const e = owned.shift()!
            e.deleted = true
            await meter.time('http delete', async () => {
              const res = await fetch(imageUrl(e.id), { method: 'DELETE' })
              if (res.status !== 204) throw await failed(res)
              await res.arrayBuffer()
            })
            ledger.remove(e.id)
          } else if (r < 0.45) {
            const e = owned[Math.floor(random() * owned.length)]
            const version = e.acked + 1
            e.sent = version
            try {
              const generation = await meter.time('http overwrite (PUT)', async () => {
                const res = await fetch(`${imageUrl(e.id)}/data`, {
                  method: 'PUT', body: makeFrame(e.width, e.height, version, tag), headers: { 'content-type': 'application/octet-stream' },
                })
                if (res.status !== 200) throw await failed(res)
                return ((await res.json()) as { generation: number }).generation
              })
              if (generation !== version) ledger.violation(`http put ${e.id}: version ${version} committed as generation ${generation}`)
              e.acked = version
            } catch (err) {
              // Unknown whether it committed: stop writing it (reads still check it) and report the failure.
              owned.splice(owned.indexOf(e), 1)
              e.sent = null
              ledger.violation(`http put ${e.id}: ${errorCode(err)}`)
            }
          } else if (r < 0.9) {
            const e = ledger.pick(random)
            if (e === undefined) continue
            const floor = e.acked
            try {
              const { bytes, generation } = await meter.time('http get data', async () => {
                const res = await fetch(`${imageUrl(e.id)}/data`)
                if (res.status !== 200) throw await failed(res)
                return { generation: Number(res.headers.get('x-pixelport-generation')), bytes: new Uint8Array(await res.arrayBuffer()) }
              })
              ledger.checkRead('http get', e, bytes, generation, floor, e.sent)
            } catch (err) {
              readFailed('http get', e, err)
            }
          } else if (r < 0.95) {
            await meter.time('http list', async () => {
              // Every page, as a client that wants the whole list does.
              for (let cursor: string | null = null; ;) {
                const res = await fetch(`${base}/images${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`)
                if (res.status !== 200) throw await failed(res)
                cursor = (await res.json() as { next: string | null }).next
                if (cursor === null) break
              }
            })
          } else {
            const e = ledger.pick(random)
            if (e === undefined) continue
            try {
              await meter.time('http describe', async () => {
                const res = await fetch(imageUrl(e.id))
                if (res.status !== 200) throw await failed(res)
                await res.json()
              })
            } catch (err) {
              readFailed('http describe', e, err)
            }
          }
        } catch (err) {
          ledger.violation(`${owner}: ${errorCode(err)} ${(err as Error).message ?? ''}`.slice(0, 300))
        }
      }
      // Its images stay for the final check; the cleanup deletes them.
    }

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
      const random = seeded((options.seed ?? 1) * 1000 + 500 + k)
      const owner = `ws${k}`
      const tag = 500 + k
      const client = await RemoteClient.connect(wsUrl, { clientName: owner })
      remotes.push(client)
      if (k % 2 === 0) subscribers.push(consume(await client.subscribe({ data: true, policy: 'latest' }), owner))
      const owned: Entry[] = []
      let serial = 0
      while (running()) {
        const r = random()
        try {
          if (owned.length < 2 || (r < 0.08 && owned.length < 4)) {
            const [width, height] = SIZES[Math.floor(random() * SIZES.length)]
            const id = `${owner}/${serial++}`
            await meter.time('ws create (chunked put)', async () => await client.put({ width, height, mode: 'L', id }, makeFrame(width, height, 0, tag)))
            const e: Entry = { id, owner, width, height, acked: 0, sent: 0, deleted: false }
            ledger.add(e)
            owned.push(e)
          } else if (r < 0.14) {
            const e = owned.shift()!
            e.deleted = true
            await meter.time('ws delete', async () => { await client.delete(e.id) })
            ledger.remove(e.id)
          } else if (r < 0.45) {
            const e = owned[Math.floor(random() * owned.length)]
            const version = e.acked + 1
            e.sent = version
            try {
              const d = await meter.time('ws overwrite (chunked put)', async () => await client.put(e.id, makeFrame(e.width, e.height, version, tag)))
              if (d.generation !== version) ledger.violation(`ws put ${e.id}: version ${version} committed as generation ${d.generation}`)
              e.acked = version
            } catch (err) {
              owned.splice(owned.indexOf(e), 1)
              e.sent = null
              ledger.violation(`ws put ${e.id}: ${errorCode(err)}`)
            }
          } else if (r < 0.92) {
            const e = ledger.pick(random)
            if (e === undefined) continue
            const floor = e.acked
            try {
              const frame = await meter.time('ws get', async () => await client.get(e.id))
              ledger.checkRead('ws get', e, frame.bytes, frame.generation, floor, e.sent)
            } catch (err) {
              readFailed('ws get', e, err)
            }
          } else {
            await meter.time('ws list', async () => await client.list())
          }
        } catch (err) {
          ledger.violation(`${owner}: ${errorCode(err)} ${(err as Error).message ?? ''}`.slice(0, 300))
        }
      }
    }

    log(`soak: ${options.seconds} s against ${base} (${options.http} HTTP, ${options.ws} WebSocket, ${options.workers} workers, ${options.hostile ?? 0} hostile)`)
    const progress = setInterval(() => log(`  ${meter.requests} requests, ${counters.workerCommits} worker commits, ${counters.events} events, ${ledger.violations.length} violations`), 5000)
    try {
      await Promise.all([
        ...Array.from({ length: options.http }, async (_, k) => await httpClient(k)),
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
      const res = await fetch(`${imageUrl(e.id)}/data`)
      if (res.status !== 200) {
        ledger.violation(`final http get ${e.id}: ${(await failed(res)).code} (acknowledged version ${e.acked} lost)`)
        continue
      }
      const generation = Number(res.headers.get('x-pixelport-generation'))
      ledger.checkRead('final http get', e, new Uint8Array(await res.arrayBuffer()), generation, e.acked, e.sent ?? e.acked)
      const frame = await checker.get(e.id)
      ledger.checkRead('final ws get', e, frame.bytes, frame.generation, e.acked, e.sent ?? e.acked)
      if (e.sent === null && e.owner.startsWith('worker') && generation !== e.acked) ledger.violation(`final ${e.id}: generation ${generation}, last acknowledged ${e.acked}`)
      finalChecked++
    }
    log(`final check: ${finalChecked} images read back over HTTP and WebSocket`)

    log('cleanup')
    // ---- cleanup: delete everything, close every client; memory must come back ----------------------
    for (const e of [...ledger.entries.values()]) {
      const res = await fetch(imageUrl(e.id), { method: 'DELETE' })
      if (res.status !== 204 && !e.deleted) ledger.violation(`cleanup delete ${e.id}: ${res.status}`)
      await res.arrayBuffer()
    }
    await checker.close()
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
