/**
 * npm run bench — every benchmark, one after another (each in its own process, so none disturbs another),
 * then bench/results/README.md and the SVG charts from the JSON files they wrote.
 *
 *   --quick          few iterations (also PIXELPORT_BENCH_QUICK=1), for a smoke test
 *   --full           the long cases too (bench:formats' 4K frame, whose WebP encodes took most of the time);
 *                    without it `npm run bench` is meant to finish within 4 minutes on a quiet 2-core machine
 *   --only a,b       run just these benches (the report still covers every results file present)
 *   --report-only    run nothing; rebuild README.md and the charts from the JSON files
 * PIXELPORT_BENCH_RESULTS=dir writes results and report there instead of bench/results/.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { writeReport } from './report.js'
import { QUICK, resultsDir } from './results.js'
import { loadLine } from './stats.js'

const FULL = process.argv.includes('--full')

interface Bench {
  name: string
  /** Why it cannot run here, or null when it can. */
  missing?: () => string | null
  /** It has long cases that only `--full` runs (and takes the flag). */
  full?: boolean
}

const BENCHES: Bench[] = [
  { name: 'worker' },
  { name: 'remote' },
  { name: 'shm', missing: () => existsSync('/dev/shm') ? null : 'no /dev/shm' },
  { name: 'formats', full: true },
  { name: 'cluster', missing: () => onPath('redis-server') ? null : 'redis-server not found' },
  { name: 'soak' },
]
/** A bench that hangs must not hold up the rest. */
const TIMEOUT_MS = 15 * 60_000
const FROM_SOURCE = import.meta.url.endsWith('.ts')

function onPath (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

function scriptOf (name: string): string {
  return fileURLToPath(new URL(`./${name}${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url))
}

function argValue (flag: string): string | undefined {
  const at = process.argv.indexOf(flag)
  return at >= 0 ? process.argv[at + 1] : undefined
}

/** Run one bench to completion with its output passed through; resolves to a note when it did not succeed. */
async function runBench (name: string, env: NodeJS.ProcessEnv, full: boolean): Promise<string | null> {
  const args = [...(FROM_SOURCE ? ['--import', 'tsx'] : []), scriptOf(name), ...(QUICK ? ['--quick'] : []), ...(full ? ['--full'] : [])]
  const t0 = performance.now()
  process.stdout.write(`\n=== bench:${name}${QUICK ? ' (quick)' : ''} ===\n`)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, TIMEOUT_MS)
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1))
    child.once('exit', (c) => resolve(c))
  })
  clearTimeout(timer)
  process.stdout.write(`=== bench:${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s ===\n`)
  if (timedOut) return `${name}: stopped after ${TIMEOUT_MS / 60_000} minutes; its results file (if any) is from an earlier run`
  return code === 0 ? null : `${name}: exited with code ${code}; its results file (if any) is from an earlier run`
}

async function main (): Promise<void> {
  const dir = resultsDir()
  const only = argValue('--only')?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const unknown = (only ?? []).filter((name) => !BENCHES.some((b) => b.name === name))
  if (unknown.length > 0) {
    process.stderr.write(`run-all: unknown bench ${unknown.join(', ')} (known: ${BENCHES.map((b) => b.name).join(', ')})\n`)
    process.exit(2)
  }
  const notes: string[] = []
  if (!process.argv.includes('--report-only')) {
    // The children write where this process reads, and shrink their iterations with it.
    const env = { ...process.env, PIXELPORT_BENCH_RESULTS: dir, ...(QUICK ? { PIXELPORT_BENCH_QUICK: '1' } : {}) }
    process.stdout.write(`${loadLine()}\n`)
    const t0 = performance.now()
    for (const bench of BENCHES) {
      if (only !== undefined && !only.includes(bench.name)) continue
      if (!existsSync(scriptOf(bench.name))) {
        notes.push(`${bench.name}: skipped (not built: no bench/${bench.name}.ts)`)
        continue
      }
      const missing = bench.missing?.() ?? null
      if (missing !== null) {
        notes.push(`${bench.name}: skipped (${missing})`)
        process.stdout.write(`\n=== bench:${bench.name}: skipped (${missing}) ===\n`)
        continue
      }
      const failed = await runBench(bench.name, env, FULL && bench.full === true)
      if (failed !== null) notes.push(failed)
    }
    process.stdout.write(`\nall benches: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  const written = writeReport(dir, notes)
  process.stdout.write(`\nwrote ${written.map((f) => `${dir}/${f}`).join(', ')}\n`)
  for (const n of notes) process.stdout.write(`note: ${n}\n`)
  // A failed bench fails the run (after the report is written, so what did run is kept).
  process.exit(notes.some((n) => / exited with | stopped after /.test(n)) ? 1 : 0)
}

await main()
