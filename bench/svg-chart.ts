/**
 * A small static SVG chart renderer for the benchmark results: line charts (for sweeps, e.g. time against
 * image size on log-log axes) and horizontal grouped bar charts (for comparisons with long labels).
 *
 * Hand-written on purpose: a chart library that renders static SVG in Node without a DOM would be a far
 * larger dependency than these ~250 lines. Output is deterministic (fixed palette, fixed decimals, no
 * dates or random ids), so re-running a benchmark only changes the lines whose figures changed.
 */

export interface Axis {
  label: string
  /** 'ms' ticks read as times (µs/ms/s); 'MiB', 'MB/s' and others as plain numbers (the unit is in the label). */
  unit?: string
  log?: boolean
}

export interface LineSeries { name: string, points: Array<[x: number, y: number]> }
export interface LineChart { kind: 'line', title: string, subtitle?: string, x: Axis, y: Axis, series: LineSeries[] }

export interface BarSeries { name: string, values: Array<number | null> }
/** Horizontal bars: one band per category, one bar per series in each band. */
export interface BarChart { kind: 'bar', title: string, subtitle?: string, categories: string[], value: Axis, series: BarSeries[] }

export type Chart = LineChart | BarChart

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000']

const WIDTH = 760
/** A bar chart grows wider rather than squeezing its plot when its category labels are long. */
const MIN_PLOT_WIDTH = 460
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
/** Rough text width for layout (no font metrics without a DOM): generous, so labels never overlap. */
const textWidth = (s: string, size = 12): number => s.length * size * 0.56

export function escapeXml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Coordinates with two decimals at most: stable text, no float noise. */
const n = (v: number): string => String(Math.round(v * 100) / 100)

/** Format a value for a tick or a bar end. */
export function formatValue (v: number, unit?: string): string {
  if (unit === 'ms') {
    if (v === 0) return '0'
    if (v < 0.001) return `${trim(v * 1e6)} ns`
    if (v < 1) return `${trim(v * 1000)} µs`
    if (v < 1000) return `${trim(v)} ms`
    return `${trim(v / 1000)} s`
  }
  if (Math.abs(v) >= 1e9) return `${trim(v / 1e9)}G`
  if (Math.abs(v) >= 1e6) return `${trim(v / 1e6)}M`
  if (Math.abs(v) >= 1e4) return `${trim(v / 1e3)}k`
  return trim(v)
}

/** At most three significant figures, no trailing zeros. */
function trim (v: number): string {
  if (v === 0) return '0'
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))))
  return String(Number(v.toFixed(Math.min(digits, 6))))
}

interface Scale { min: number, max: number, log: boolean, ticks: number[], minor: number[] }

/** Decade ticks (10^k) for a log axis; the range is widened to whole decades so every tick is labelled. */
export function logTicks (lo: number, hi: number): { min: number, max: number, ticks: number[], minor: number[] } {
  const a = Math.floor(Math.log10(lo))
  let b = Math.ceil(Math.log10(hi))
  if (b === a) b = a + 1
  const ticks: number[] = []
  const minor: number[] = []
  for (let k = a; k <= b; k++) {
    ticks.push(decade(k))
    if (k < b) for (let m = 2; m <= 9; m++) minor.push(m * decade(k))
  }
  return { min: decade(a), max: decade(b), ticks, minor }
}

/** 10^k without float noise for negative k (10 ** -3 is 0.0010000000000000002 on some engines). */
const decade = (k: number): number => k >= 0 ? 10 ** k : Number(`1e${k}`)

/** About five ticks at 1, 2 or 5 × 10^k from zero up, for a linear axis. */
export function linearTicks (hi: number): { min: number, max: number, ticks: number[] } {
  if (!(hi > 0)) return { min: 0, max: 1, ticks: [0, 1] }
  const raw = hi / 5
  const p = decade(Math.floor(Math.log10(raw)))
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!
  const count = Math.ceil(hi / step - 1e-9)
  const ticks = Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)))
  return { min: 0, max: ticks[ticks.length - 1], ticks }
}

function scaleFor (values: number[], log: boolean): Scale {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0))
  if (log) {
    const lo = finite.length > 0 ? Math.min(...finite) : 1
    const hi = finite.length > 0 ? Math.max(...finite) : 10
    return { ...logTicks(lo, hi), log: true }
  }
  return { ...linearTicks(finite.length > 0 ? Math.max(...finite) : 1), log: false, minor: [] }
}

/** Map a value to [0, 1] along a scale (clamped: a value off a log axis sits on its edge). */
function fraction (s: Scale, v: number): number {
  const f = s.log
    ? (Math.log10(Math.max(v, s.min)) - Math.log10(s.min)) / (Math.log10(s.max) - Math.log10(s.min))
    : (v - s.min) / (s.max - s.min)
  return Math.min(1, Math.max(0, f))
}

function axisTitle (a: Axis): string {
  return a.unit !== undefined && a.unit !== 'ms' && !a.label.includes(`(${a.unit})`) ? `${a.label} (${a.unit})` : a.label
}

function header (chart: Chart, width: number, height: number): string[] {
  const desc = chart.subtitle !== undefined ? `${chart.title}. ${chart.subtitle}` : chart.title
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" role="img" aria-label="${escapeXml(desc)}">`,
    `<title>${escapeXml(desc)}</title>`,
    `<rect width="${n(width)}" height="${n(height)}" fill="#ffffff"/>`,
    `<text x="${n(width / 2)}" y="24" text-anchor="middle" font-size="16" font-weight="600" fill="#111" ${FONT}>${escapeXml(chart.title)}</text>`,
  ]
  if (chart.subtitle !== undefined) out.push(`<text x="${n(width / 2)}" y="42" text-anchor="middle" font-size="12" fill="#555" ${FONT}>${escapeXml(chart.subtitle)}</text>`)
  return out
}

/** Legend rows under the plot, as many entries per row as fit. Returns the SVG and its height. */
function legend (names: string[], top: number, left: number, right: number, marker: 'line' | 'box'): { svg: string[], height: number } {
  const svg: string[] = ['<g class="legend">']
  let x = left
  let y = top + 14
  for (const [i, name] of names.entries()) {
    const w = 28 + textWidth(name) + 18
    if (x > left && x + w > right) { x = left; y += 20 }
    const color = PALETTE[i % PALETTE.length]
    svg.push(marker === 'line'
      ? `<line x1="${n(x)}" y1="${n(y - 4)}" x2="${n(x + 20)}" y2="${n(y - 4)}" stroke="${color}" stroke-width="2.5"/><circle cx="${n(x + 10)}" cy="${n(y - 4)}" r="3.5" fill="${color}"/>`
      : `<rect x="${n(x + 4)}" y="${n(y - 10)}" width="12" height="12" fill="${color}"/>`)
    svg.push(`<text x="${n(x + 26)}" y="${n(y)}" font-size="12" fill="#222" ${FONT}>${escapeXml(name)}</text>`)
    x += w
  }
  svg.push('</g>')
  return { svg, height: y - top + 10 }
}

function legendHeight (names: string[], left: number, right: number): number {
  return legend(names, 0, left, right, 'box').height
}

export function renderLineChart (chart: LineChart): string {
  const xs = scaleFor(chart.series.flatMap((s) => s.points.map((p) => p[0])), chart.x.log === true)
  const ys = scaleFor(chart.series.flatMap((s) => s.points.map((p) => p[1])), chart.y.log === true)
  const yLabels = ys.ticks.map((t) => formatValue(t, chart.y.unit))
  const left = 40 + Math.max(...yLabels.map((l) => textWidth(l, 11)))
  const right = WIDTH - 24
  const top = chart.subtitle !== undefined ? 60 : 44
  const plotHeight = 300
  const bottom = top + plotHeight
  const legendTop = bottom + 48
  const height = legendTop + legendHeight(chart.series.map((s) => s.name), left, right) + 8
  const px = (v: number): number => left + fraction(xs, v) * (right - left)
  const py = (v: number): number => bottom - fraction(ys, v) * plotHeight

  const out = header(chart, WIDTH, height)
  out.push(`<g class="plot" data-left="${n(left)}" data-right="${n(right)}" data-top="${n(top)}" data-bottom="${n(bottom)}">`)
  out.push(...grid(xs, ys, left, right, top, bottom, chart.x.unit, chart.y.unit))
  for (const [i, s] of chart.series.entries()) {
    const color = PALETTE[i % PALETTE.length]
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])).sort((a, b) => a[0] - b[0])
    if (pts.length > 1) out.push(`<polyline class="series" fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round" points="${pts.map((p) => `${n(px(p[0]))},${n(py(p[1]))}`).join(' ')}"/>`)
    for (const p of pts) out.push(`<circle class="point" cx="${n(px(p[0]))}" cy="${n(py(p[1]))}" r="3.5" fill="${color}"><title>${escapeXml(`${s.name}: ${formatValue(p[0], chart.x.unit)} → ${formatValue(p[1], chart.y.unit)}`)}</title></circle>`)
  }
  out.push('</g>')
  out.push(`<text x="${n((left + right) / 2)}" y="${n(bottom + 38)}" text-anchor="middle" font-size="13" fill="#222" ${FONT}>${escapeXml(axisTitle(chart.x))}</text>`)
  out.push(`<text transform="translate(16 ${n((top + bottom) / 2)}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222" ${FONT}>${escapeXml(axisTitle(chart.y))}</text>`)
  out.push(...legend(chart.series.map((s) => s.name), legendTop, left, right, 'line').svg)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** Grid lines, tick marks and tick labels for both axes of a line chart. */
function grid (xs: Scale, ys: Scale, left: number, right: number, top: number, bottom: number, xUnit?: string, yUnit?: string): string[] {
  const out: string[] = []
  for (const t of xs.minor) {
    const x = left + fraction(xs, t) * (right - left)
    out.push(`<line class="minor" x1="${n(x)}" y1="${top}" x2="${n(x)}" y2="${bottom}" stroke="#f0f0f0"/>`)
  }
  for (const t of ys.minor) {
    const y = bottom - fraction(ys, t) * (bottom - top)
    out.push(`<line class="minor" x1="${n(left)}" y1="${n(y)}" x2="${n(right)}" y2="${n(y)}" stroke="#f0f0f0"/>`)
  }
  for (const t of xs.ticks) {
    const x = left + fraction(xs, t) * (right - left)
    out.push(`<line class="tick x" data-value="${t}" x1="${n(x)}" y1="${top}" x2="${n(x)}" y2="${bottom + 5}" stroke="#d9d9d9"/>`)
    out.push(`<text x="${n(x)}" y="${n(bottom + 18)}" text-anchor="middle" font-size="11" fill="#444" ${FONT}>${escapeXml(formatValue(t, xUnit))}</text>`)
  }
  for (const t of ys.ticks) {
    const y = bottom - fraction(ys, t) * (bottom - top)
    out.push(`<line class="tick y" data-value="${t}" x1="${n(left - 5)}" y1="${n(y)}" x2="${n(right)}" y2="${n(y)}" stroke="#d9d9d9"/>`)
    out.push(`<text x="${n(left - 8)}" y="${n(y + 4)}" text-anchor="end" font-size="11" fill="#444" ${FONT}>${escapeXml(formatValue(t, yUnit))}</text>`)
  }
  out.push(`<rect x="${n(left)}" y="${top}" width="${n(right - left)}" height="${bottom - top}" fill="none" stroke="#888"/>`)
  return out
}

export function renderBarChart (chart: BarChart): string {
  const values = chart.series.flatMap((s) => s.values).filter((v): v is number => v !== null)
  const vs = scaleFor(values, chart.value.log === true)
  const left = 24 + Math.max(...chart.categories.map((c) => textWidth(c)))
  const width = Math.max(WIDTH, left + MIN_PLOT_WIDTH + 90)
  const right = width - 90 // room for the value written past the longest bar
  const top = chart.subtitle !== undefined ? 60 : 44
  const bar = 14
  const gap = 3
  const bandPad = 12
  const band = chart.series.length * (bar + gap) - gap + 2 * bandPad
  const bottom = top + chart.categories.length * band
  const legendTop = bottom + 48
  const height = legendTop + (chart.series.length > 1 ? legendHeight(chart.series.map((s) => s.name), left, right) : 0) + 8
  const px = (v: number): number => left + fraction(vs, v) * (right - left)

  const out = header(chart, width, height)
  out.push(`<g class="plot" data-left="${n(left)}" data-right="${n(right)}" data-top="${n(top)}" data-bottom="${n(bottom)}">`)
  for (const t of vs.minor) out.push(`<line class="minor" x1="${n(px(t))}" y1="${top}" x2="${n(px(t))}" y2="${bottom}" stroke="#f0f0f0"/>`)
  for (const t of vs.ticks) {
    out.push(`<line class="tick x" data-value="${t}" x1="${n(px(t))}" y1="${top}" x2="${n(px(t))}" y2="${bottom + 5}" stroke="#d9d9d9"/>`)
    out.push(`<text x="${n(px(t))}" y="${bottom + 18}" text-anchor="middle" font-size="11" fill="#444" ${FONT}>${escapeXml(formatValue(t, chart.value.unit))}</text>`)
  }
  for (const [c, category] of chart.categories.entries()) {
    const y0 = top + c * band
    if (c > 0) out.push(`<line x1="0" y1="${n(y0)}" x2="${n(width)}" y2="${n(y0)}" stroke="#eeeeee"/>`)
    out.push(`<text x="${n(left - 8)}" y="${n(y0 + band / 2 + 4)}" text-anchor="end" font-size="12" fill="#222" ${FONT}>${escapeXml(category)}</text>`)
    for (const [i, s] of chart.series.entries()) {
      const v = s.values[c]
      if (v === null || v === undefined || !Number.isFinite(v)) continue
      const y = y0 + bandPad + i * (bar + gap)
      const w = px(v) - left
      const label = `${formatValue(v, chart.value.unit)}${chart.value.unit !== undefined && chart.value.unit !== 'ms' ? ` ${chart.value.unit}` : ''}`
      out.push(`<rect class="bar" x="${n(left)}" y="${n(y)}" width="${n(w)}" height="${bar}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${category}, ${s.name}: ${label}`)}</title></rect>`)
      out.push(`<text x="${n(left + w + 4)}" y="${n(y + bar - 3)}" font-size="11" fill="#333" ${FONT}>${escapeXml(label)}</text>`)
    }
  }
  out.push(`<rect x="${n(left)}" y="${top}" width="${n(right - left)}" height="${bottom - top}" fill="none" stroke="#888"/>`)
  out.push('</g>')
  out.push(`<text x="${n((left + right) / 2)}" y="${n(bottom + 38)}" text-anchor="middle" font-size="13" fill="#222" ${FONT}>${escapeXml(axisTitle(chart.value))}</text>`)
  if (chart.series.length > 1) out.push(...legend(chart.series.map((s) => s.name), legendTop, left, right, 'box').svg)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

export function renderChart (chart: Chart): string {
  return chart.kind === 'line' ? renderLineChart(chart) : renderBarChart(chart)
}
