/**
 * Small helpers shared by the benchmarks: medians and spreads, alternated rounds, the load at start,
 * formatting, a table printer.
 */
import os from 'node:os'

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

export function fmtTime (ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`
  if (ms < 1000) return `${ms.toFixed(2)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

export function fmtBytes (n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(0)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`
  return `${n} B`
}

export function fmtRate (bytes: number, ms: number): string {
  return `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`
}

/** Print rows as an aligned Markdown table (so the README can quote it as is). */
export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  return [line(headers), '| ' + widths.map((w) => '-'.repeat(w)).join(' | ') + ' |', ...rows.map(line)].join('\n')
}

/** The least rounds a figure is taken over (each round runs every compared case once, in turn). */
export const MIN_ROUNDS = 5

/** min, median and max (and the 99th percentile) of a sample. */
export interface Spread { n: number, min: number, median: number, max: number, p99: number }

export function spread (xs: number[]): Spread {
  if (xs.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN, p99: NaN }
  return { n: xs.length, min: Math.min(...xs), median: median(xs), max: Math.max(...xs), p99: percentile(xs, 99) }
}

/** `median (min–max)` with `fmt` for each figure. */
export function fmtSpread (xs: number[], fmt: (v: number) => string = (v) => v.toFixed(2)): string {
  const s = spread(xs)
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`
}

/**
 * Run `rounds` rounds of every case, alternated: each round runs each case once, in an order that rotates
 * from round to round, so a burst of load or a slow warm-up lands on every case alike. Returns each case's
 * samples (what its function returned: a time, a rate, …), in round order.
 */
export async function alternate<K extends string> (rounds: number, cases: Record<K, () => number | Promise<number>>): Promise<Record<K, number[]>> {
  const names = Object.keys(cases) as K[]
  const samples = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<K, number[]>
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]
      samples[name].push(await cases[name]())
    }
  }
  return samples
}

/** The load when a bench starts: the 1-minute load average against the cores it has. */
export interface LoadAtStart { loadavg: number[], cores: number, overloaded: boolean }

export function loadAtStart (): LoadAtStart {
  const loadavg = os.loadavg().map((l) => Math.round(l * 100) / 100)
  const cores = os.availableParallelism()
  return { loadavg, cores, overloaded: loadavg[0] > cores }
}

/**
 * The line every bench prints first: the load average at its start, and a warning when it is above the
 * core count (its figures then say more about the other load than about Pixelport).
 */
export function loadLine (load: LoadAtStart = loadAtStart()): string {
  const line = `load average at start: ${load.loadavg.join(' ')} (${load.cores} cores)`
  return load.overloaded
    ? `${line}\nWARNING: the load average is above the core count: these figures are not quiet-machine figures and must not be quoted.`
    : line
}
