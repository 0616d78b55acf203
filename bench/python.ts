/**
 * npm run bench:python — a 33 MiB frame (3840×2160 RGBA) into a numpy array in a Python process, every way
 * a Python user has, in one run: the pixelport package over shared memory (consistent copy; zero-copy look),
 * HTTP and WebSocket; and without Pixelport, multiprocessing.shared_memory (copy out of a segment another
 * process filled) and a pickle over a multiprocessing Pipe. Prints medians and ratios to HTTP.
 * Options: --quick (fewer rounds).
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createServer } from '../server/server.js'
import { QUICK } from './results.js'
import { fmtRate, fmtTime, table } from './stats.js'

const MiB = 1024 * 1024
const ROUNDS = QUICK ? 3 : 10
const FROM_SOURCE = import.meta.url.endsWith('.ts')
// The Python files are not compiled: from dist/bench/ they are back in the source tree.
const ROOT = fileURLToPath(new URL(FROM_SOURCE ? '..' : '../..', import.meta.url))
const SCRIPT = `${ROOT}/bench/fixtures/python_bench.py`
const MODULE = `${ROOT}/python/src`
const PYTHON = '/usr/bin/python3'

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

const result = await new Promise<Record<string, number>>((resolve, reject) => {
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

const base = result.http
const rows: Array<[string, number, boolean]> = [
  ['pixelport, shared memory: consistent copy (own buffer)', result.shmCopy, true],
  ['pixelport, shared memory: zero-copy array', result.shmZeroCopy, false],
  ['pixelport, HTTP get', result.http, true],
  ['pixelport, WebSocket get', result.ws, true],
  ['multiprocessing.shared_memory: attach + copy out', result.mpSharedMemory, true],
  ['multiprocessing Pipe: pickle from another process', result.pipePickle, true],
]
process.stdout.write(`pixelport bench:python — ${bytes} bytes (33 MiB, 3840×2160 RGBA), medians of ${ROUNDS} interleaved rounds\n\n`)
process.stdout.write(table(['way', 'median', 'rate', 'vs HTTP'],
  rows.map(([what, ms, moves]) => [what, fmtTime(ms), moves ? fmtRate(bytes, ms) : '—', `${(base / ms).toFixed(ms > base ? 2 : 0)}x`])) + '\n')
