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
}

export interface NamedChart { file: string, chart: Chart }

export interface BenchResults {
  name: string
  title?: string
  machine?: { cpus: number, node: string, date: string, loadavg?: number[] }
  quick?: boolean
  /** One line under the bench's heading: what was measured, and how. */
  note?: string
  rows: ResultRow[]
  charts?: NamedChart[]
}

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
  const out: BenchResults = { name, ...data, machine: machine(), ...(QUICK ? { quick: true } : {}) }
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
  return file
}

/** Round for storage: four significant figures is more than any of these measurements can claim. */
export function sig (v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(4)) : v
}
