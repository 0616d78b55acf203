/**
 * npm run bench:shm — another process on the same host getting a 33 MiB frame (4096×2816 RGB), and seeing
 * a commit, through shared memory against the copying transports.
 *
 * The server (with --shm) runs in this process; a separate Node.js process (pixelport/attach) and a
 * Python/numpy process (the python/ package, from python/src) measure, each for itself and interleaved round-robin:
 *   - the first attach of the process (addon, HTTP client and mappings all new) + a zero-copy look;
 *   - attach + open + look at the pixels in place (zero-copy), and attach + open + a consistent full copy
 *     into a buffer the process keeps (on VMs first-touch page faults of fresh memory can cost far more
 *     than the copy; HTTP and WebSocket get each frame into fresh memory, as their clients do);
 *   - attached already: a consistent copy, and a zero-copy look;
 *   - `GET /images/:id/data` over HTTP, and (Node) a WebSocket `get` with RemoteClient.
 * Then the time from a commit in this process to a process waiting for it seeing it: Node blocking in a
 * futex (waitForChangeSync), Node awaiting waitForChange (a helper thread in the futex), Python's
 * wait_for_change; and, for the platform's own floor, a bare futex wake with no Pixelport code in between.
 * Options: --quick (fewer rounds).
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { SLOT, slotBase } from '../protocol/layout.js'
import { createServer } from '../server/server.js'
import { QUICK, sig, writeResults, type ResultRow } from './results.js'
import { fmtRate, fmtTime, median, percentile, table } from './stats.js'

const MiB = 1024 * 1024
const quick = QUICK
const ROUNDS = quick ? 5 : 10
const WAKES = quick ? 50 : 200
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const NODE_CLIENT = fileURLToPath(new URL(`./fixtures/shm-node-client${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url))
// The Python file is not compiled: from dist/bench/ it is back in the source tree.
const ROOT = fileURLToPath(new URL(FROM_SOURCE ? '..' : '../..', import.meta.url))
const PY_CLIENT = `${ROOT}/bench/fixtures/shm_python_client.py`
const PY_MODULE = `${ROOT}/python/src`
const PYTHON = '/usr/bin/python3'

const server = await createServer({ port: 0, shm: true, capacity: 512 * MiB, blockSize: 64 * MiB, maxImageBytes: 256 * MiB })
if (!server.shm.enabled) {
  process.stderr.write(`bench:shm needs shared memory: ${server.shm.reason}\n`)
  process.exit(1)
}
const url = await server.listen()
const FRAME = 'bench/frame'
const frame = server.store.create({ id: FRAME, width: 4096, height: 2816, mode: 'RGB' })
await server.store.write(FRAME, randomFillSync(new Uint8Array(frame.byteLength)))
server.store.create({ id: 'bench/tick', shape: [1], typestr: '<u8' })
const tickSlot = server.store.slotOf('bench/tick')
// A bare futex word and a stamp in shared memory, for the platform's own wake-up latency.
const floor = server.store.create({ id: 'bench/floor', shape: [2], typestr: '<i8' })
const floorLoc = floor.location as { block: number, byteOffset: number }
const floorBuffer = server.store.blockBuffer(floorLoc.block)!
const floorWord = new Int32Array(floorBuffer, floorLoc.byteOffset, 2)
const floorStamp = new BigInt64Array(floorBuffer, floorLoc.byteOffset + 8, 1)
const futexWake = server.store.arena.provider.futexWake!

interface Child { lines: AsyncIterator<string>, done: Promise<number | null> }

function run (command: string, args: string[]): Child {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return { lines, done: new Promise((resolve) => child.once('exit', resolve)) }
}

async function nextJson (child: Child): Promise<any> {
  const { value, done } = await child.lines.next()
  if (done === true) throw new Error('the client ended early')
  return JSON.parse(value)
}

function nodeClient (mode: string, n: number): Child {
  return run(process.execPath, ['--expose-gc', ...(FROM_SOURCE ? ['--import', 'tsx'] : []), NODE_CLIENT, url, FRAME, mode, String(n)])
}

function pythonClient (mode: string, n: number): Child {
  return run(PYTHON, [PY_CLIENT, PY_MODULE, url, FRAME, mode, String(n)])
}

/** Commit a new generation of bench/tick holding this process's CLOCK_MONOTONIC time, taken last thing before the commit. */
async function tick (): Promise<void> {
  await server.store.update('bench/tick', (pieces) => {
    new DataView(pieces[0].buffer, pieces[0].byteOffset, 8).setBigUint64(0, process.hrtime.bigint(), true)
  })
}

/** The bare futex: stamp, move the word, wake. */
function bareTick (): void {
  Atomics.store(floorStamp, 0, process.hrtime.bigint())
  Atomics.add(floorWord, 0, 1)
  futexWake(floorBuffer, floorLoc.byteOffset)
}

/** Drive a waiting client: each round, once it says it is about to wait (and is asleep), commit. */
async function wakeRounds (child: Child): Promise<{ latencies: number[], floor?: number[] }> {
  for (;;) {
    const msg = await nextJson(child)
    if (msg.latencies !== undefined) return msg
    const bare = msg.kind === 'floor'
    // It registers in FUTEX_WAITERS just before it sleeps; give it a moment to be asleep in the kernel,
    // so this measures a wake-up, not a waiter that finds the change before it sleeps.
    const deadline = Date.now() + 5000
    while (!bare && Atomics.load(server.store.table.words, slotBase(tickSlot) + SLOT.FUTEX_WAITERS) === 0) {
      if (Date.now() > deadline) break
      await new Promise((resolve) => setImmediate(resolve))
    }
    await new Promise((resolve) => setTimeout(resolve, 2))
    if (bare) bareTick()
    else await tick()
  }
}

const pythonOk = await new Promise<boolean>((resolve) => {
  const probe = spawn(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' })
  probe.once('error', () => resolve(false))
  probe.once('exit', (code) => resolve(code === 0))
})

process.stdout.write(`pixelport bench:shm — ${frame.byteLength} bytes (33 MiB, 4096×2816 RGB), medians of ${ROUNDS} interleaved rounds; wake-up: ${WAKES} commits\n\n`)

const node = nodeClient('transfer', ROUNDS)
const nodeT = await nextJson(node)
await node.done
const py = pythonOk ? pythonClient('transfer', ROUNDS) : null
const pyT = py === null ? null : await nextJson(py)
await py?.done

const bytes = frame.byteLength
// A zero-copy look moves no bytes: no rate for it.
const row = (what: string, ms: number | undefined, base: number): string[] => {
  const at = what.indexOf(': ')
  const [client, label] = [what.slice(0, at), what.slice(at + 2)]
  measured.push([client, label, ms])
  return rowText(what, ms, base)
}
const rowText = (what: string, ms: number | undefined, base: number): string[] =>
  ms === undefined ? [what, '—', '—', '—'] : [what, fmtTime(ms), /zero-copy/.test(what) ? '—' : fmtRate(bytes, ms), `${(base / ms).toFixed(ms > base ? 2 : 0)}x`]
// [label, ms, HTTP ms of the same client] for bench/results/shm.json.
const measured: Array<[client: string, label: string, ms: number | undefined]> = []
const rows: string[][] = [
  row('Node: attach + open + zero-copy look', nodeT.attachZeroCopy, nodeT.http),
  row('Node: attach + open + consistent copy (own buffer)', nodeT.attachCopy, nodeT.http),
  row('Node: first attach of the process + open + zero-copy look', nodeT.cold, nodeT.http),
  row('Node: attached, consistent copy (own buffer)', nodeT.copy, nodeT.http),
  row('Node: attached, zero-copy look', nodeT.zeroCopy, nodeT.http),
  row('Node: HTTP GET /images/:id/data', nodeT.http, nodeT.http),
  row('Node: WebSocket get (RemoteClient)', nodeT.ws, nodeT.http),
]
if (pyT !== null) {
  rows.push(
    row('Python: describe + np.memmap array (zero-copy)', pyT.attachZeroCopy, pyT.http),
    row('Python: connect + open + consistent copy (own buffer)', pyT.attachCopy, pyT.http),
    row('Python: first connect of the process + open + zero-copy array', pyT.cold, pyT.http),
    row('Python: attached, consistent copy (own buffer)', pyT.copy, pyT.http),
    row('Python: attached, zero-copy array', pyT.zeroCopy, pyT.http),
    row('Python: HTTP GET (urllib)', pyT.http, pyT.http),
  )
}
process.stdout.write(table(['getting the frame', 'time', 'rate', 'vs HTTP'], rows) + '\n\n')

const wakeRows: string[][] = []
const wakeMedians: Array<[string, number]> = []
const wakeRow = (name: string, us: number[]): string[] => {
  wakeMedians.push([name.trim(), median(us)])
  return wakeRowText(name, us)
}
const wakeRowText = (name: string, us: number[]): string[] =>
  [name, `${median(us).toFixed(1)} µs`, `${percentile(us, 90).toFixed(1)} µs`, `${percentile(us, 99).toFixed(1)} µs`, `${Math.min(...us).toFixed(1)} µs`]
const wake = async (name: string, child: Child): Promise<void> => {
  const result = await wakeRounds(child)
  await child.done
  wakeRows.push(wakeRow(name, result.latencies))
  if (result.floor !== undefined && result.floor.length > 0) wakeRows.push(wakeRow('  floor: bare futex wake, same processes, interleaved', result.floor))
}
await wake('Node, waitForChangeSync (futex)', nodeClient('wake-sync', WAKES))
await wake('Node, await waitForChange (helper thread)', nodeClient('wake-async', WAKES))
if (pythonOk) await wake('Python, wait_for_change (futex)', pythonClient('wake', WAKES))
process.stdout.write(table(['commit here → seen by a waiting process', 'median', 'p90', 'p99', 'min'], wakeRows) + '\n')
if (!pythonOk) process.stdout.write(`\n(${PYTHON} with numpy not found: Python rows skipped)\n`)

writeStructured()
await server.close()

/** bench/results/shm.json: each client's ways of getting the frame against its own HTTP download, and wake-ups. */
function writeStructured (): void {
  const rows: ResultRow[] = []
  for (const [client, label, ms] of measured) {
    if (ms === undefined) continue
    rows.push({ group: `${client}: another process getting a 33 MiB frame (median)`, label, value: sig(ms), unit: 'ms', ...(/HTTP/.test(label) ? { baseline: true } : {}) })
  }
  for (const [name, us] of wakeMedians) {
    rows.push({ group: 'commit here → seen by a waiting process (median)', label: name.replace(/^floor: /, 'floor: '), value: sig(us / 1000), unit: 'ms' })
  }
  const bars = measured.filter((m): m is [string, string, number] => m[2] !== undefined)
  writeResults('shm', {
    title: 'Shared memory across processes (npm run bench:shm)',
    note: `A ${bytes}-byte frame (4096×2816 RGB); medians of ${ROUNDS} interleaved rounds. Ratios: how many times faster than the same client's HTTP download.`,
    rows,
    charts: [{
      file: 'shm-vs-http',
      chart: {
        kind: 'bar',
        title: 'Another process getting a 33 MiB frame',
        subtitle: 'median time, log scale: shared memory (attach, copy, zero-copy) against HTTP and WebSocket',
        categories: bars.map(([client, label]) => `${client}: ${label}`),
        value: { label: 'time', unit: 'ms', log: true },
        series: [{ name: 'time', values: bars.map((m) => sig(m[2])) }],
      },
    }],
  })
}
