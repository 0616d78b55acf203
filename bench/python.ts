/**
 * npm run bench:python — a 33 MiB frame (3840×2160 RGBA) into a numpy array in a Python process, every way
 * a Python user has, in one run: the pixelport package over shared memory (consistent copy; zero-copy look),
 * HTTP and WebSocket; and without Pixelport, multiprocessing.shared_memory (copy out of a segment another
 * process filled) and a pickle over a multiprocessing Pipe. Prints min, median and max per way, the ratio of
 * medians to HTTP, and the load average at the start (with a warning when it is above the core count).
 * Options: --quick (fewer rounds).
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createServer } from '../server/server.js'
import { LOAD_AT_START, QUICK } from './results.js'
import { fmtRate, fmtTime, loadLine, MIN_ROUNDS, table } from './stats.js'

const MiB = 1024 * 1024
const ROUNDS = QUICK ? 3 : Math.max(MIN_ROUNDS, 10)
const FROM_SOURCE = import.meta.url.endsWith('.ts')
// The Python files are not compiled: from dist/bench/ they are back in the source tree.
const ROOT = fileURLToPath(new URL(FROM_SOURCE ? '..' : '../..', import.meta.url))
const SCRIPT = `${ROOT}/bench/fixtures/python_bench.py`
const MODULE = `${ROOT}/python/src`
const PYTHON = '/usr/bin/python3'

// Taken before anything of this bench runs.
const LOAD = loadLine(LOAD_AT_START)

const server = await createServer({ port: 0, shm: true, capacity: 512 * MiB, blockSize: 64 * MiB, maxImageBytes: 256 * MiB })
if (!server.shm.enabled) {
  process.stderr.write(`bench:python needs shared memory: ${server.shm.reason}\n`)
  process.exit(1)
}
const url = await server.listen()
const FRAME = 'bench/python'
server.store.create({ id: FRAME, width: 3840, height: 2160, mode: 'RGBA' })
const bytes = 3840 * 2160 * 4
await server.store.write(FRAME, randomFillSync(new Uint8Array(bytes)))

interface Spread { min: number, median: number, max: number }
const result = await new Promise<Record<string, Spread>>((resolve, reject) => {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawn(PYTHON, [SCRIPT, MODULE, url, FRAME, String(ROUNDS)], { stdio: ['ignore', 'pipe', 'inherit'], env })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.once('error', reject)
  child.once('exit', (code) => {
    if (code !== 0) reject(new Error(`${PYTHON} exited with ${code}: ${out}`))
    else resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}'))
  })
})
await server.close()

const base = result.http.median
const rows: Array<[string, Spread, boolean]> = [
  ['pixelport, shared memory: consistent copy (own buffer)', result.shmCopy, true],
  ['pixelport, shared memory: zero-copy array', result.shmZeroCopy, false],
  ['pixelport, HTTP get', result.http, true],
  ['pixelport, WebSocket get', result.ws, true],
  ['multiprocessing.shared_memory: attach + copy out', result.mpSharedMemory, true],
  ['multiprocessing Pipe: pickle from another process', result.pipePickle, true],
]
process.stdout.write(`pixelport bench:python — ${bytes} bytes (33 MiB, 3840×2160 RGBA), ${ROUNDS} interleaved rounds\n${LOAD}\n`)
process.stdout.write('\n' + table(['way', 'min', 'median', 'max', 'median rate', 'vs HTTP (medians)'],
  rows.map(([what, s, moves]) => [what, fmtTime(s.min), fmtTime(s.median), fmtTime(s.max), moves ? fmtRate(bytes, s.median) : '—', `${(base / s.median).toFixed(s.median > base ? 2 : 0)}x`])) + '\n')
