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
 * futex (waitForChangeSync), Node awaiting waitForChange, Python's wait_for_change. Each waiting process
 * alternates those waits with a bare futex wait on a word of the same memory, woken the same way from here
 * with no Pixelport code in between: the floor between the same two processes, in the same run. Reported:
 * p50 and p99 of both, and p50 against the floor's p50.
 * Every figure: median, min and max over the rounds (at least 5), with the load average at the start.
 * Options: --quick (fewer rounds), --only transfer|wake.
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { SLOT, slotBase } from '../protocol/layout.js'
import { createServer } from '../server/server.js'
import { LOAD_AT_START, QUICK, sig, spreadRow, writeResults, type ResultRow } from './results.js'
import { fmtRate, fmtTime, loadLine, MIN_ROUNDS, spread, table } from './stats.js'

const MiB = 1024 * 1024
const quick = QUICK
const ROUNDS = quick ? MIN_ROUNDS : 10
const WAKES = quick ? 50 : 200
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null
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
async function wakeRounds (child: Child): Promise<{ latencies: number[], floor?: number[], asyncFloor?: number[] }> {
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

process.stdout.write(`pixelport bench:shm — ${frame.byteLength} bytes (33 MiB, 4096×2816 RGB), median [min – max] of ${ROUNDS} interleaved rounds; wake-up: ${WAKES} commits alternated with as many bare futex wakes\n${loadLine(LOAD_AT_START)}\n\n`)

const bytes = frame.byteLength
// [client, label, that client's HTTP times, the times] for bench/results/shm.json.
const measured: Array<[client: string, label: string, times: number[] | undefined]> = []
type Times = Record<string, number[]> & { cold: number }

if (only !== 'wake') {
  const node = nodeClient('transfer', ROUNDS)
  const nodeT = await nextJson(node) as Times
  await node.done
  const py = pythonOk ? pythonClient('transfer', ROUNDS) : null
  const pyT = py === null ? null : await nextJson(py) as Times
  await py?.done

  const rows: string[][] = []
  // A zero-copy look moves no bytes: no rate for it. Ratios: the medians against the same client's HTTP.
  const row = (what: string, times: number[] | undefined, http: number[]): void => {
    const at = what.indexOf(': ')
    measured.push([what.slice(0, at), what.slice(at + 2), times])
    if (times === undefined) { rows.push([what, '—', '—', '—', '—']); return }
    const s = spread(times)
    const base = spread(http).median
    rows.push([what, fmtTime(s.median), `${fmtTime(s.min)} – ${fmtTime(s.max)}`, /zero-copy/.test(what) ? '—' : fmtRate(bytes, s.median), `${(base / s.median).toFixed(s.median > base ? 2 : 0)}x`])
  }
  row('Node: attach + open + zero-copy look', nodeT.attachZeroCopy, nodeT.http)
  row('Node: attach + open + consistent copy (own buffer)', nodeT.attachCopy, nodeT.http)
  row('Node: first attach of the process + open + zero-copy look', [nodeT.cold], nodeT.http)
  row('Node: attached, consistent copy (own buffer)', nodeT.copy, nodeT.http)
  row('Node: attached, zero-copy look', nodeT.zeroCopy, nodeT.http)
  row('Node: HTTP download (pixelport/client download())', nodeT.http, nodeT.http)
  row('Node: WebSocket get (RemoteClient)', nodeT.ws, nodeT.http)
  if (pyT !== null) {
    row('Python: describe + np.memmap array (zero-copy)', pyT.attachZeroCopy, pyT.http)
    row('Python: connect + open + consistent copy (own buffer)', pyT.attachCopy, pyT.http)
    row('Python: first connect of the process + open + zero-copy array', [pyT.cold], pyT.http)
    row('Python: attached, consistent copy (own buffer)', pyT.copy, pyT.http)
    row('Python: attached, zero-copy array', pyT.zeroCopy, pyT.http)
    row('Python: HTTP GET (urllib)', pyT.http, pyT.http)
  }
  process.stdout.write(table(['getting the frame (first attach: one sample)', 'median', 'min – max', 'rate', 'vs HTTP'], rows) + '\n\n')
}

// [waiter, its latencies, the floor's latencies, the kernel's async floor's] (µs) for bench/results/shm.json.
const wakes: Array<[name: string, us: number[], floor: number[], asyncFloor: number[] | undefined]> = []
if (only !== 'transfer') {
  const wakeRows: string[][] = []
  const us = (v: number): string => `${v.toFixed(1)} µs`
  const wake = async (name: string, child: Child): Promise<void> => {
    const result = await wakeRounds(child)
    await child.done
    const floor = result.floor ?? []
    wakes.push([name, result.latencies, floor, result.asyncFloor])
    const s = spread(result.latencies)
    const f = spread(floor)
    const a = result.asyncFloor === undefined ? null : spread(result.asyncFloor)
    wakeRows.push([name, us(s.median), us(s.p99), `${us(s.min)} – ${us(s.max)}`, us(f.median), us(f.p99), `${(s.median / f.median).toFixed(2)}x`,
      a === null ? '—' : `${us(a.median)} / ${us(a.p99)}`, a === null ? '—' : `${(s.median / a.median).toFixed(2)}x`])
  }
  await wake('Node, waitForChangeSync', nodeClient('wake-sync', WAKES))
  await wake('Node, await waitForChange', nodeClient('wake-async', WAKES))
  if (pythonOk) await wake('Python, wait_for_change', pythonClient('wake', WAKES))
  process.stdout.write(table(['commit here → seen by a waiting process', 'p50', 'p99', 'min – max', 'floor p50', 'floor p99', 'p50 / floor p50', 'async floor p50 / p99', 'p50 / async floor'], wakeRows) + '\n')
  process.stdout.write('(floor: a bare blocking futex wait in the same waiting process, woken from here, alternated with the measured waits;\n' +
    ' async floor: a bare io_uring futex wait on that process\'s event loop, nothing of ours around it, alternated the same way)\n')
}
if (!pythonOk) process.stdout.write(`\n(${PYTHON} with numpy not found: Python rows skipped)\n`)

writeStructured()
await server.close()

/** bench/results/shm.json: each client's ways of getting the frame against its own HTTP download, and wake-ups. */
function writeStructured (): void {
  const rows: ResultRow[] = []
  for (const [client, label, times] of measured) {
    if (times === undefined) continue
    rows.push(spreadRow({ group: `${client}: another process getting a 33 MiB frame (median)`, label, unit: 'ms', ...(/HTTP/.test(label) ? { baseline: true } : {}) }, times))
  }
  for (const [name, us, floor, asyncFloor] of wakes) {
    const group = `${name}: commit here → seen by the waiting process`
    const ms = (xs: number[]): number[] => xs.map((v) => v / 1000)
    rows.push(
      spreadRow({ group, label: 'floor: bare futex wake, same processes (p50)', unit: 'ms', baseline: true }, ms(floor)),
      spreadRow({ group, label: `${name} (p50)`, unit: 'ms' }, ms(us)),
      { group, label: 'floor (p99)', value: sig(spread(floor).p99 / 1000), unit: 'ms' },
      { group, label: `${name} (p99)`, value: sig(spread(us).p99 / 1000), unit: 'ms' },
    )
    if (asyncFloor !== undefined) {
      rows.push(
        spreadRow({ group, label: 'async floor: bare io_uring futex wait on the event loop (p50)', unit: 'ms' }, ms(asyncFloor)),
        { group, label: 'async floor (p99)', value: sig(spread(asyncFloor).p99 / 1000), unit: 'ms' },
      )
    }
  }
  const bars = measured.filter((m): m is [string, string, number[]] => m[2] !== undefined)
  writeResults(only === null ? 'shm' : `shm-${only}`, {
    title: 'Shared memory across processes (npm run bench:shm)',
    note: `A ${bytes}-byte frame (4096×2816 RGB); medians of ${ROUNDS} interleaved rounds. Ratios: how many times faster than the same client's HTTP download; for wake-ups, than the bare futex floor between the same two processes.`,
    rows,
    charts: bars.length === 0
      ? []
      : [{
          file: 'shm-vs-http',
          chart: {
            kind: 'bar',
            title: 'Another process getting a 33 MiB frame',
            subtitle: 'median time, log scale: shared memory (attach, copy, zero-copy) against HTTP and WebSocket',
            categories: bars.map(([client, label]) => `${client}: ${label}`),
            value: { label: 'time', unit: 'ms', log: true },
            series: [{ name: 'time', values: bars.map((m) => sig(spread(m[2]).median)) }],
          },
        }],
  })
}
