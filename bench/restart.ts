/**
 * Restart benchmark: `npm run bench:restart` (or `npx tsx bench/restart.ts`; `--quick` for a tiny run).
 *
 * How long a `pixelport serve --shm --recover` takes from its start to serving 1,000 adopted images totalling
 * 4 GiB (1024 × 1049 RGBA each), against the same start with an empty store. "Serving" is: the process
 * printed its URL, `GET /images` lists every image, and `GET /images/<last>/data` returned its bytes. Each
 * start is a real CLI process; the adopted runs stop with --keep so the next run adopts the same segments.
 * Needs ~4.1 GiB free in /dev/shm. Prints a table and writes bench/results/restart.json.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer } from '../server/server.js'
import { LOAD_AT_START, QUICK, spreadRow, writeResults, type ResultRow } from './results.js'
import { fmtTime, loadLine, median, MIN_ROUNDS, table } from './stats.js'

const IMAGES = QUICK ? 20 : 1000
const WIDTH = QUICK ? 64 : 1024
const HEIGHT = QUICK ? 48 : 1049
const IMAGE_BYTES = WIDTH * HEIGHT * 4
const RUNS = QUICK ? 1 : MIN_ROUNDS
// Multiplied, not shifted: `<<` works on 32 bits, and 4 GiB does not fit.
const CAPACITY = Math.ceil((IMAGES * IMAGE_BYTES * 1.05) / 2 ** 20) * 2 ** 20
const BLOCK_SIZE = 64 << 20
const here = fileURLToPath(import.meta.url)
const CLI = path.resolve(path.dirname(here), here.endsWith('.ts') ? '../dist/cli/main.js' : '../cli/main.js')
const SIZE_FLAGS = ['--capacity', String(CAPACITY), '--block-size', String(BLOCK_SIZE), '--max-images', String(IMAGES + 16)]

/** Fill a store with IMAGES images (one byte per page written, so every page exists) and keep it. */
async function populate (prefix: string): Promise<void> {
  const server = await createServer({ port: 0, shm: { prefix }, capacity: CAPACITY, blockSize: BLOCK_SIZE, maxImages: IMAGES + 16 })
  const bytes = new Uint8Array(IMAGE_BYTES)
  for (let i = 0; i < IMAGES; i++) {
    for (let p = 0; p < IMAGE_BYTES; p += 4096) bytes[p] = (i + p) & 0xff
    server.store.create({ id: `img/${i}`, width: WIDTH, height: HEIGHT, mode: 'RGBA' }, bytes)
  }
  await server.close({ keep: true })
}

/** Start the CLI, wait until it serves `expected` images and the last one's bytes; returns ms since spawn. */
async function timedStart (args: string[], expected: number): Promise<{ ms: number, child: ChildProcess }> {
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stderr!.on('data', (b: Buffer) => { out += b.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m !== null) resolve(m[1])
    })
    child.once('exit', (code) => reject(new Error(`pixelport exited (${code}):\n${out}`)))
  })
  const list = await (await fetch(`${url}/images`)).json() as unknown[] | { images: unknown[] }
  const count = Array.isArray(list) ? list.length : list.images.length
  if (count !== expected) throw new Error(`expected ${expected} images, the server lists ${count}:\n${out}`)
  if (expected > 0) {
    const res = await fetch(`${url}/images/${encodeURIComponent(`img/${expected - 1}`)}/data`)
    if (res.status !== 200 || (await res.arrayBuffer()).byteLength !== IMAGE_BYTES) throw new Error(`GET of the last image: ${res.status}`)
  }
  return { ms: performance.now() - started, child }
}

async function stop (child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

function removeAll (prefix: string): void {
  for (const f of readdirSync('/dev/shm')) if (f.startsWith(prefix + '-')) unlinkSync(path.join('/dev/shm', f))
}

async function main (): Promise<void> {
  const prefix = `pxpbench_${process.pid}`
  const emptyPrefix = `pxpbench_empty_${process.pid}`
  process.stdout.write(`pixelport bench:restart — median [min – max] of ${RUNS} alternated rounds\n${loadLine(LOAD_AT_START)}\n`)
  process.stdout.write(`populating ${IMAGES} images of ${WIDTH}x${HEIGHT} RGBA (${(IMAGES * IMAGE_BYTES / 2 ** 30).toFixed(2)} GiB) ...\n`)
  try {
    await populate(prefix)
    const adopted: number[] = []
    const empty: number[] = []
    for (let run = 0; run < RUNS; run++) {
      const a = await timedStart(['--shm', '--shm-prefix', prefix, '--recover', '--keep', ...SIZE_FLAGS], IMAGES)
      adopted.push(a.ms)
      await stop(a.child)
      const e = await timedStart(['--shm', '--shm-prefix', emptyPrefix, ...SIZE_FLAGS], 0)
      empty.push(e.ms)
      await stop(e.child)
    }
    const rows: ResultRow[] = [
      spreadRow({ label: 'start, empty store', unit: 'ms', baseline: true }, empty),
      spreadRow({ label: `start, adopting ${IMAGES} images`, unit: 'ms' }, adopted),
    ]
    process.stdout.write(table(['start', 'median', 'min', 'max'], [
      ['empty store', fmtTime(median(empty)), fmtTime(Math.min(...empty)), fmtTime(Math.max(...empty))],
      [`adopting ${IMAGES} images`, fmtTime(median(adopted)), fmtTime(Math.min(...adopted)), fmtTime(Math.max(...adopted))],
    ]) + '\n')
    const file = writeResults('restart', {
      title: 'Restart: adopting a store',
      quick: QUICK,
      note: `time from spawning \`pixelport serve --shm --recover\` to serving ${IMAGES} adopted images (${(IMAGES * IMAGE_BYTES / 2 ** 30).toFixed(2)} GiB; listed and the last one read) against an empty start; median of ${RUNS}`,
      rows,
    })
    process.stdout.write(`results: ${file}\n`)
  } finally {
    removeAll(prefix)
    removeAll(emptyPrefix)
  }
}

await main()
