/**
 * npm run bench:worker — what it costs a worker thread to get at an image, against the natural alternatives.
 *
 * For each size: a bare MessagePort round trip, postMessage with structured clone, postMessage with a
 * transfer list (and back), and Pixelport: open + read first/last pixel + release, asked for by message (same
 * footing as the alternatives) and with no message at all (timed inside the worker). Then wake-up latency: a
 * commit waking a worker in waitForChange, against a bare Atomics.wait/notify ping-pong.
 * Every figure: median, min and max over at least 5 alternated rounds (each round runs each way once, as a
 * small batch whose median is the round's figure), with the load average at the start.
 */
import { once } from 'node:events'
import type { Worker } from 'node:worker_threads'
import { createServer } from '../server/server.js'
import { LOAD_AT_START, QUICK, sig, spreadRow, writeResults, type ResultRow } from './results.js'
import { alternate, fmtBytes, fmtTime, loadLine, median, MIN_ROUNDS, spread, table } from './stats.js'

const MiB = 1024 * 1024
// Powers of four from 64 KiB to 64 MiB (and the 33 MiB of a 4K RGBA frame): even steps on a log axis.
const quick = QUICK
const SIZES = quick ? [64 * 1024, MiB, 8 * MiB] : [64 * 1024, 256 * 1024, MiB, 4 * MiB, 16 * MiB, 33 * MiB, 64 * MiB]
const ITER = quick ? 5 : 40
const ROUNDS = MIN_ROUNDS
const WORKER = new URL('./fixtures/bench-worker' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url)

const server = await createServer({ port: 0, capacity: 1024 * MiB, maxImageBytes: 512 * MiB, blockSize: 64 * MiB })

async function spawn (role = 'main'): Promise<{ worker: Worker, ask: (msg: any, transfer?: any[]) => Promise<any> }> {
  const worker = server.spawnWorker(WORKER, { workerData: { role } })
  const [started] = await once(worker, 'message')
  if (started.op !== 'started') throw new Error('bench worker did not start')
  const ask = async (msg: any, transfer: any[] = []): Promise<any> => {
    worker.postMessage(msg, transfer)
    const [reply] = await once(worker, 'message')
    return reply
  }
  return { worker, ask }
}

/** The median of `n` timed calls of `fn`: one round's figure. */
async function batch (n: number, fn: () => Promise<void>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  return median(times)
}

/** `median [min – max]` of a round's figures. */
function fmtRounds (xs: number[]): string {
  const s = spread(xs)
  return `${fmtTime(s.median)} [${fmtTime(s.min)} – ${fmtTime(s.max)}]`
}

process.stdout.write(`pixelport bench:worker — median [min – max] of ${ROUNDS} alternated rounds\n${loadLine(LOAD_AT_START)}\n`)
const { ask } = await spawn()
const rows: string[][] = []
type Way = 'clone' | 'transfer' | 'viaMessage' | 'noMessage'
const results: Array<{ size: number, cold: number } & Record<Way, number[]>> = []
await batch(ITER, async () => { await ask({ op: 'ping' }) }) // warm-up
const roundTrips = (await alternate(ROUNDS, { ping: () => batch(ITER, async () => { await ask({ op: 'ping' }) }) })).ping
const roundTrip = median(roundTrips)
for (const size of SIZES) {
  const id = `bench-${size}`
  // An RGBA image of about `size` bytes.
  const width = 1024
  const height = Math.max(1, Math.round(size / (width * 4)))
  server.store.create({ id, width, height, mode: 'RGBA' })
  const bytes = new Uint8Array(width * height * 4)
  // Cloning the large sizes takes up to seconds a time on a loaded machine: smaller batches keep `npm run bench` short.
  const n = Math.max(1, Math.round((size >= 32 * MiB ? ITER / 8 : size >= 16 * MiB ? ITER / 4 : ITER) / ROUNDS))
  let buffer: ArrayBuffer = new ArrayBuffer(bytes.byteLength)
  // First: the very first open in this block (maps it: one message), then opens with no message at all.
  const first = await ask({ op: 'openLoop', id, n: 1 })
  const samples = await alternate<Way>(ROUNDS, {
    clone: () => batch(n, async () => { await ask({ op: 'clone', data: bytes }) }),
    transfer: () => batch(n, async () => {
      const reply = await ask({ op: 'transfer', buffer }, [buffer])
      buffer = reply.buffer
    }),
    viaMessage: () => batch(Math.max(1, Math.round(ITER / ROUNDS)), async () => { await ask({ op: 'open', id }) }),
    noMessage: async () => median((await ask({ op: 'openLoop', id, n: ITER * 2 })).times),
  })
  results.push({ size, cold: first.cold, ...samples })
  const clone = median(samples.clone)
  rows.push([
    fmtBytes(size), fmtRounds(samples.clone), fmtRounds(samples.transfer), fmtRounds(samples.viaMessage), fmtRounds(samples.noMessage), fmtTime(first.cold),
    `${(clone / median(samples.viaMessage)).toFixed(0)}x`, `${(clone / median(samples.noMessage)).toFixed(0)}x`,
  ])
  server.store.delete(id)
}

console.log(`\nWorker access to one image (median [min – max] over rounds; bare MessagePort round trip: ${fmtRounds(roundTrips)})\n`)
console.log(table(
  ['size', 'structured clone', 'transfer + back', 'open by message', 'open, no message', 'first open (maps block)', 'clone / by message', 'clone / no message'],
  rows,
))

// ---- wake-up latency ----------------------------------------------------------------------------------
server.store.create({ id: 'pingpong', width: 16, height: 16, mode: 'L' })
const PINGS = quick ? 100 : 600
async function pair (op: string, extra: Record<string, unknown>): Promise<number> {
  const a = await spawn('a')
  const b = await spawn('b')
  const readyB = once(b.worker, 'message')
  b.worker.postMessage({ op, n: PINGS, ...extra })
  await readyB
  const readyA = once(a.worker, 'message')
  a.worker.postMessage({ op, n: PINGS, ...extra })
  await readyA
  const [doneA] = await once(a.worker, 'message')
  await once(b.worker, 'message')
  a.worker.postMessage({ op: 'exit' })
  b.worker.postMessage({ op: 'exit' })
  // Each round trip is two wake-ups; report one.
  return median(doneA.times.slice(PINGS / 10)) / 2
}
const wakes = await alternate(ROUNDS, {
  bareSync: () => pair('bare', { sab: new SharedArrayBuffer(4) }),
  bareAsync: () => pair('bareAsync', { sab: new SharedArrayBuffer(4) }),
  ours: () => pair('pingpong', { id: 'pingpong' }),
  oursSync: () => pair('pingpongSync', { id: 'pingpong' }),
})
const bareSync = median(wakes.bareSync)
const vsBare = (xs: number[]): string => `${(median(xs) / bareSync).toFixed(2)}x`
console.log('\nCommit → waiting worker wakes (median [min – max] over rounds, one direction)\n')
console.log(table(['path', 'latency', 'vs bare Atomics.wait'], [
  ['bare Atomics.wait/notify (sync)', fmtRounds(wakes.bareSync), '1.00x'],
  ['bare Atomics.waitAsync/notify', fmtRounds(wakes.bareAsync), vsBare(wakes.bareAsync)],
  ['Pixelport write() → waitForChange() (async)', fmtRounds(wakes.ours), vsBare(wakes.ours)],
  ['Pixelport write() → waitForChangeSync()', fmtRounds(wakes.oursSync), vsBare(wakes.oursSync)],
]))
console.log('\nJSON ' + JSON.stringify({ results, wake: wakes }))
writeStructured()
await server.close()
process.exit(0)

/** bench/results/worker.json: the open-time sweep (table + chart) and the wake-up latencies. */
function writeStructured (): void {
  const SERIES: Array<[key: Way, name: string]> = [
    ['clone', 'structured clone'], ['transfer', 'transfer + back'], ['viaMessage', 'Pixelport open by message'], ['noMessage', 'Pixelport open, no message'],
  ]
  const rows: ResultRow[] = []
  for (const r of results) {
    for (const [key, series] of SERIES) {
      rows.push(spreadRow({ group: 'worker access to one image (median)', label: fmtBytes(r.size), x: r.size / MiB, series, unit: 'ms', ...(key === 'clone' ? { baseline: true } : {}) }, r[key]))
    }
  }
  const wakeGroup = 'commit → waiting worker wakes (median, one direction)'
  rows.push(
    spreadRow({ group: wakeGroup, label: 'bare Atomics.wait/notify', unit: 'ms', baseline: true }, wakes.bareSync),
    spreadRow({ group: wakeGroup, label: 'bare Atomics.waitAsync/notify', unit: 'ms' }, wakes.bareAsync),
    spreadRow({ group: wakeGroup, label: 'write() → waitForChange() (async)', unit: 'ms' }, wakes.ours),
    spreadRow({ group: wakeGroup, label: 'write() → waitForChangeSync()', unit: 'ms' }, wakes.oursSync),
  )
  writeResults('worker', {
    title: 'Worker threads (npm run bench:worker)',
    note: `Open = open + read the first and last pixel + release. A bare MessagePort round trip took ${fmtTime(roundTrip)}; "by message" includes one, like clone and transfer.`,
    rows,
    charts: [{
      file: 'worker-open-vs-size',
      chart: {
        kind: 'line',
        title: 'A worker thread getting at one image',
        subtitle: 'median time against image size; structured clone copies, Pixelport maps shared memory',
        x: { label: 'image size', unit: 'MiB', log: true },
        y: { label: 'time per access', unit: 'ms', log: true },
        series: SERIES.map(([key, name]) => ({ name, points: results.map((r) => [r.size / MiB, sig(median(r[key]))] as [number, number]) })),
      },
    }, {
      file: 'worker-wake',
      chart: {
        kind: 'bar',
        title: 'Commit → a waiting worker wakes',
        subtitle: 'median, one direction',
        categories: rows.filter((r) => r.group === wakeGroup).map((r) => r.label),
        value: { label: 'latency', unit: 'ms' },
        series: [{ name: 'latency', values: rows.filter((r) => r.group === wakeGroup).map((r) => r.value) }],
      },
    }],
  })
}
