/**
 * From bench/results/*.json to what people look at: bench/results/README.md (a Markdown table per group,
 * with ratios against each group's baseline) and one SVG per chart a bench declared.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { BenchResults, ResultRow } from './results.js'
import { fmtBytes, fmtTime } from './stats.js'
import { renderChart } from './svg-chart.js'

/** The order benches appear in the report; any other results follow by name. */
export const BENCH_ORDER = ['worker', 'remote', 'shm', 'formats', 'cluster', 'soak']

export function formatRowValue (value: number, unit: string): string {
  switch (unit) {
    case 'ms': return fmtTime(value)
    case 'bytes': return fmtBytes(value)
    case 'x': return `${value}x`
    case 'MB/s': case 'req/s': return `${grouped(Math.round(value))} ${unit}`
    default: return `${value} ${unit}`
  }
}

function grouped (v: number): string {
  return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** Times and memory: lower is better. Everything else measured here (MB/s, req/s): higher is better. */
const lowerIsBetter = (unit: string): boolean => unit === 'ms' || unit === 'bytes'

/** How many times better than the baseline (above 1 = better); null when the two cannot be compared. */
export function ratio (row: ResultRow, base: ResultRow | undefined): number | null {
  if (base === undefined || base.unit !== row.unit || row.unit === 'x' || !(row.value > 0) || !(base.value > 0)) return null
  return lowerIsBetter(row.unit) ? base.value / row.value : row.value / base.value
}

export function fmtRatio (r: number): string {
  return r >= 10 ? `${grouped(Math.round(r))}x` : `${r.toFixed(2)}x`
}

const cell = (s: string): string => s.replace(/\|/g, '\\|')

function markdownTable (headers: string[], rows: string[][]): string[] {
  return [`| ${headers.map(cell).join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)]
}

/** Distinct values in first-seen order. */
const distinct = <T>(xs: T[]): T[] => [...new Set(xs)]

/** One group: a sweep (rows with series) pivots to one column per series; otherwise measure | value | ratio. */
export function groupTable (rows: ResultRow[]): string[] {
  const base = rows.find((r) => r.baseline === true)
  if (rows.some((r) => r.series !== undefined)) {
    const series = distinct(rows.map((r) => r.series ?? ''))
    const labels = distinct(rows.map((r) => r.label))
    const body = labels.map((label) => {
      const baseHere = base === undefined ? undefined : rows.find((r) => r.label === label && r.series === base.series)
      return [label, ...series.map((s) => {
        const r = rows.find((x) => x.label === label && (x.series ?? '') === s)
        if (r === undefined) return '—'
        const k = r === baseHere ? null : ratio(r, baseHere)
        return valueCell(r) + (k === null ? '' : ` (${fmtRatio(k)})`)
      })]
    })
    const out = markdownTable(['', ...series], body)
    if (base !== undefined) out.push('', `(Nx): ${ratioMeaning(base.unit, base.series ?? '')}, at the same ${rows[0].x !== undefined ? 'size' : 'row'}.`)
    return out
  }
  const headers = base === undefined ? ['measure', 'value'] : ['measure', 'value', `vs ${base.label}`]
  const out = markdownTable(headers, rows.map((r) => {
    const k = ratio(r, base)
    return base === undefined ? [r.label, valueCell(r)] : [r.label, valueCell(r), r === base ? '1x' : k === null ? '—' : fmtRatio(k)]
  }))
  if (base !== undefined) out.push('', `Ratios: ${ratioMeaning(base.unit, base.label)}.`)
  return out
}

function ratioMeaning (unit: string, base: string): string {
  if (unit === 'ms') return `how many times faster than ${base} (below 1: slower)`
  if (unit === 'bytes') return `how many times less than ${base}`
  return `${unit} relative to ${base} (above 1: more)`
}

function machineLine (r: BenchResults): string {
  if (r.machine === undefined) return ''
  const m = r.machine
  const loadavg = r.loadAtStart?.loadavg ?? m.loadavg
  const load = loadavg !== undefined ? `, load average ${loadavg.join(' ')}${r.loadAtStart !== undefined ? ' at start' : ''}` : ''
  const line = `_${m.date}, Node ${m.node}, ${m.cpus} CPUs${load}${r.quick === true ? ', **quick mode** (few iterations)' : ''}._`
  // Older results files only have the load when they were written: above the core count counts too.
  const overloaded = r.overloaded ?? (m.loadavg !== undefined && m.loadavg[0] > m.cpus)
  return overloaded
    ? `${line}\n\n> **Warning: taken with the load average above the core count.** These are not quiet-machine figures: do not quote them.`
    : line
}

/** A median with its spread when the row has one: `12.30 ms [11.90 ms – 14.00 ms, 5 rounds]`. */
export function valueCell (r: ResultRow): string {
  const v = formatRowValue(r.value, r.unit)
  if (r.min === undefined || r.max === undefined) return v
  return `${v} [${formatRowValue(r.min, r.unit)} – ${formatRowValue(r.max, r.unit)}${r.rounds !== undefined ? `, ${r.rounds} rounds` : ''}]`
}

/** The whole bench/results/README.md. `notes`: lines about this run (skipped or failed benches). */
export function renderMarkdown (results: BenchResults[], notes: string[] = []): string {
  const out = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run-all.ts) from the JSON files in this folder; re-run it rather than editing.',
    'Each benchmark ran alone, one after another, on the machine named under its heading. Figures are medians',
    'over alternated rounds, with their spread: `median [min – max, N rounds]`; ratios compare medians. A bench',
    'that started with the load average above the core count is marked with a warning: quote only figures',
    'from a quiet machine.',
  ]
  if (notes.length > 0) out.push('', ...notes.map((n) => `- ${n}`))
  for (const r of results) {
    out.push('', `## ${r.title ?? r.name}`, '')
    const m = machineLine(r)
    if (m !== '') out.push(m, '')
    if (r.note !== undefined) out.push(r.note, '')
    for (const c of r.charts ?? []) out.push(`![${c.chart.title}](${c.file}.svg)`, '')
    for (const group of distinct(r.rows.map((row) => row.group))) {
      if (group !== undefined) out.push(`### ${group}`, '')
      out.push(...groupTable(r.rows.filter((row) => row.group === group)), '')
    }
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n+$/, '') + '\n'
}

/** Results files in a directory, in report order; files that are not results are skipped with a note. */
export function readResults (dir: string, notes: string[] = []): BenchResults[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  const results: BenchResults[] = []
  for (const f of files) {
    try {
      const r = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as BenchResults
      if (typeof r.name !== 'string' || !Array.isArray(r.rows)) throw new Error('no name or rows')
      results.push(r)
    } catch (err) {
      notes.push(`${f}: not a results file (${(err as Error).message})`)
    }
  }
  const rank = (name: string): number => { const i = BENCH_ORDER.indexOf(name); return i < 0 ? BENCH_ORDER.length : i }
  return results.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
}

/** Write README.md and every chart into `dir`; returns the files written (names only). */
export function writeReport (dir: string, notes: string[] = []): string[] {
  const results = readResults(dir, notes)
  const written: string[] = []
  for (const r of results) {
    for (const c of r.charts ?? []) {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(c.file)) { notes.push(`${r.name}: chart file name ${JSON.stringify(c.file)} refused`); continue }
      writeFileSync(path.join(dir, `${c.file}.svg`), renderChart(c.chart))
      written.push(`${c.file}.svg`)
    }
  }
  writeFileSync(path.join(dir, 'README.md'), renderMarkdown(results, notes))
  written.push('README.md')
  return written
}
