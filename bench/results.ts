/**
 * The structured results every benchmark writes beside its console output: bench/results/<name>.json,
 * which bench/run-all.ts turns into Markdown tables and SVG charts.
 *
 * One row is one measured figure. `group` splits a bench's rows into tables (e.g. per image size);
 * `series` + `x` make a sweep (one table column / chart line per series, one table row per label); the
 * row marked `baseline` in a group is what the others are compared with. Charts carry their own data (the
 * renderer's input, see svg-chart.ts), so run-all needs no knowledge of any one bench.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAtStart, spread, type LoadAtStart } from './stats.js'
import type { Chart } from './svg-chart.js'

export interface ResultRow {
  group?: string
  label: string
  value: number
  /** 'ms' (times), 'MB/s', 'req/s', 'bytes', 'x' (a ratio), … */
  unit: string
  series?: string
  x?: number
  /** The reference of its group (or, for a sweep, of its label): the Markdown table shows ratios against it. */
  baseline?: boolean
  /** The spread behind `value` (a median): the least and the largest of its `rounds` samples. */
  min?: number
  max?: number
  rounds?: number
}

export interface NamedChart { file: string, chart: Chart }

export interface BenchResults {
  name: string
  title?: string
  machine?: { cpus: number, node: string, date: string, loadavg?: number[] }
  /** The load average when the bench started, and whether it was above the core count. */
  loadAtStart?: LoadAtStart
  /** Taken with the load average above the core count: not quiet-machine figures (the report says so). */
  overloaded?: boolean
  quick?: boolean
  /** One line under the bench's heading: what was measured, and how. */
  note?: string
  rows: ResultRow[]
  charts?: NamedChart[]
}

/** The load when this bench process started (every bench imports this module first thing). */
export const LOAD_AT_START = loadAtStart()

/** Shrunk iterations, for the smoke test: `--quick` or PIXELPORT_BENCH_QUICK=1. */
export const QUICK = process.argv.includes('--quick') || process.env.PIXELPORT_BENCH_QUICK === '1'

/**
 * bench/results/ in the source tree (from both bench/*.ts under tsx and dist/bench/*.js), or
 * PIXELPORT_BENCH_RESULTS (the smoke test points it at a temporary directory).
 */
export function resultsDir (): string {
  const fromEnv = process.env.PIXELPORT_BENCH_RESULTS
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv)
  return path.resolve(fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bench/results/' : './results/', import.meta.url)))
}

export function machine (): NonNullable<BenchResults['machine']> {
  return {
    cpus: os.cpus().length,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  }
}

/** Write <results dir>/<name>.json; returns its path. */
export function writeResults (name: string, data: Omit<BenchResults, 'name' | 'machine'>): string {
  const dir = resultsDir()
  mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${name}.json`)
  const out: BenchResults = {
    name, ...data, machine: machine(), loadAtStart: LOAD_AT_START,
    ...(LOAD_AT_START.overloaded ? { overloaded: true } : {}), ...(QUICK ? { quick: true } : {}),
  }
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
  if (LOAD_AT_START.overloaded) {
    process.stderr.write(`WARNING: ${file} is marked overloaded (load average ${LOAD_AT_START.loadavg[0]} at start, ${LOAD_AT_START.cores} cores): not quiet-machine figures\n`)
  }
  return file
}

/** A row for the median of `samples`, with their spread (min, max, how many rounds). */
export function spreadRow (row: Omit<ResultRow, 'value' | 'min' | 'max' | 'rounds'>, samples: number[]): ResultRow {
  const s = spread(samples)
  return { ...row, value: sig(s.median), min: sig(s.min), max: sig(s.max), rounds: s.n }
}

/** Round for storage: four significant figures is more than any of these measurements can claim. */
export function sig (v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(4)) : v
}
