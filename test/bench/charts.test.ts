/**
 * The benchmark report: the SVG renderer (well-formed, points inside the plot, decade ticks on log axes,
 * a legend entry per series, deterministic), the Markdown tables with their ratios, and the built run-all
 * (spawns dist/: build first) turning a real quick run's results into the report.
 */
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { groupTable, renderMarkdown, writeReport } from '../../bench/report.js'
import type { BenchResults, ResultRow } from '../../bench/results.js'
import { alternate, loadLine, spread } from '../../bench/stats.js'
import { ROOT } from '../helpers/paths.js'
import { logTicks, renderBarChart, renderLineChart, type BarChart, type LineChart } from '../../bench/svg-chart.js'

const RUN_ALL = path.join(ROOT, 'dist/bench/run-all.js')
const FIXTURE = path.join(ROOT, 'test/fixtures/bench-results')

/** A small XML well-formedness check: balanced tags, quoted attributes, only the five escapes in text. */
function checkXml (xml: string): { root: string, elements: number } {
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y
  const stack: string[] = []
  let root = ''
  let elements = 0
  let i = 0
  while (i < xml.length) {
    const lt = xml.indexOf('<', i)
    const text = xml.slice(i, lt < 0 ? xml.length : lt)
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text)) throw new Error(`bare & in text near ${JSON.stringify(text.slice(0, 40))}`)
    if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root: ${JSON.stringify(text.slice(0, 40))}`)
    if (lt < 0) break
    tag.lastIndex = lt
    const m = tag.exec(xml)
    if (m === null) throw new Error(`malformed tag at ${lt}: ${JSON.stringify(xml.slice(lt, lt + 60))}`)
    const [whole, closing, name, attrs, selfClosing] = m
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(attrs)) throw new Error(`bare & in attributes of <${name}>`)
    const names = [...attrs.matchAll(/([\w:.-]+)="/g)].map((a) => a[1])
    if (new Set(names).size !== names.length) throw new Error(`repeated attribute in <${name}>`)
    if (closing === '/') {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`)
    } else {
      if (stack.length === 0) {
        if (root !== '') throw new Error('two root elements')
        root = name
      }
      elements++
      if (selfClosing !== '/') stack.push(name)
    }
    i = lt + whole.length
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`)
  return { root, elements }
}

function plotBox (svg: string): { left: number, right: number, top: number, bottom: number } {
  const m = /class="plot" data-left="([\d.]+)" data-right="([\d.]+)" data-top="([\d.]+)" data-bottom="([\d.]+)"/.exec(svg)
  if (m === null) throw new Error('no plot group')
  return { left: Number(m[1]), right: Number(m[2]), top: Number(m[3]), bottom: Number(m[4]) }
}

const tickValues = (svg: string, axis: 'x' | 'y'): number[] =>
  [...svg.matchAll(new RegExp(`class="tick ${axis}" data-value="([^"]+)"`, 'g'))].map((m) => Number(m[1]))

const legendTexts = (svg: string): string[] => {
  const legend = /<g class="legend">([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? ''
  return [...legend.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1])
}

const sizes = [0.0625, 0.25, 1, 4, 16, 33, 64]
const line: LineChart = {
  kind: 'line',
  title: 'Open time vs size',
  subtitle: 'a <subtitle> & friends',
  x: { label: 'image size', unit: 'MiB', log: true },
  y: { label: 'time', unit: 'ms', log: true },
  series: [
    { name: 'structured clone', points: sizes.map((s) => [s, 0.3 * s * 10]) },
    { name: 'open <by> message & co', points: sizes.map((s) => [s, 0.05]) },
    { name: 'open, no message', points: sizes.map((s) => [s, 0.004 + s / 1e4]) },
  ],
}

t.test('a log-log line chart is well-formed SVG with its points inside the plot area', async (t) => {
  const svg = renderLineChart(line)
  const { root, elements } = checkXml(svg)
  t.equal(root, 'svg')
  t.ok(elements > 30, `${elements} elements`)
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /)
  const box = plotBox(svg)
  const points = [...svg.matchAll(/class="point" cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])])
  t.equal(points.length, 3 * sizes.length, 'one marker per point')
  for (const [x, y] of points) {
    t.ok(x >= box.left && x <= box.right && y >= box.top && y <= box.bottom, `(${x}, ${y}) inside ${JSON.stringify(box)}`)
  }
  // The smallest and largest sizes sit strictly inside (the axis is widened to whole decades).
  const xs = points.map((p) => p[0])
  t.ok(Math.min(...xs) > box.left && Math.max(...xs) < box.right)
  // Larger clone times are drawn higher (smaller y): the y axis is not inverted.
  const clone = points.slice(0, sizes.length)
  for (let i = 1; i < clone.length; i++) t.ok(clone[i][1] < clone[i - 1][1], 'clone time rises with size')
})

t.test('log axes have ticks exactly at decades, covering the data', async (t) => {
  const svg = renderLineChart(line)
  t.same(tickValues(svg, 'x'), [0.01, 0.1, 1, 10, 100])
  t.same(tickValues(svg, 'y'), [0.001, 0.01, 0.1, 1, 10, 100, 1000])
  // Tick labels read as times on a 'ms' axis.
  t.match(svg, />1 µs</)
  t.match(svg, />1 s</)
  t.same(logTicks(3, 3).ticks, [1, 10], 'one value still spans a decade')
  t.same(logTicks(0.002, 0.5).ticks, [0.001, 0.01, 0.1, 1])
  t.equal(logTicks(1, 100).minor.length, 16, '2..9 in each of two decades')
})

t.test('the legend has one entry per series, text escaped', async (t) => {
  const svg = renderLineChart(line)
  t.same(legendTexts(svg), ['structured clone', 'open &lt;by&gt; message &amp; co', 'open, no message'])
  t.match(svg, /<title>Open time vs size\. a &lt;subtitle&gt; &amp; friends<\/title>/)
  t.equal(renderLineChart(line), svg, 'deterministic')
})

t.test('a bar chart on a log axis: bars start at the axis and end inside the plot', async (t) => {
  const bars: BarChart = {
    kind: 'bar',
    title: 'Another process getting a 33 MiB frame',
    categories: ['zero-copy look', 'consistent copy', 'HTTP GET /images/:id/data'],
    value: { label: 'time', unit: 'ms', log: true },
    series: [{ name: 'Node', values: [0.017, 2.6, 419] }, { name: 'Python', values: [0.02, null, 161] }],
  }
  const svg = renderBarChart(bars)
  checkXml(svg)
  const box = plotBox(svg)
  const rects = [...svg.matchAll(/class="bar" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)].map((m) => m.slice(1).map(Number))
  t.equal(rects.length, 5, 'a missing value draws no bar')
  for (const [x, y, w, h] of rects) {
    t.equal(x, box.left)
    t.ok(w > 0 && x + w <= box.right + 0.01 && y >= box.top && y + h <= box.bottom, `bar ${x},${y} ${w}×${h} inside`)
  }
  const widths = rects.map((r) => r[2])
  t.ok(widths[0] < widths[2] && widths[2] < widths[4], 'longer time, longer bar')
  t.same(tickValues(svg, 'x'), [0.01, 0.1, 1, 10, 100, 1000])
  t.same(legendTexts(svg), ['Node', 'Python'])
  t.match(svg, />419 ms</, 'values written at the bar ends')

  const linear = renderBarChart({ ...bars, value: { label: 'throughput', unit: 'MB/s' }, series: [{ name: 'only', values: [120, 480, 950] }] })
  checkXml(linear)
  t.same(tickValues(linear, 'x'), [0, 200, 400, 600, 800, 1000], 'linear ticks at round steps from zero')
  t.notMatch(linear, /class="legend"/, 'one series needs no legend')
})

t.test('Markdown tables: ratios against the baseline, sweeps pivoted by series', async (t) => {
  const flat: ResultRow[] = [
    { label: 'raw net socket', value: 1000, unit: 'MB/s', baseline: true },
    { label: 'ours | WS get', value: 800, unit: 'MB/s' },
  ]
  t.same(groupTable(flat), [
    '| measure | value | vs raw net socket |',
    '| --- | --- | --- |',
    '| raw net socket | 1,000 MB/s | 1x |',
    '| ours \\| WS get | 800 MB/s | 0.80x |',
    '',
    'Ratios: MB/s relative to raw net socket (above 1: more).',
  ])
  const sweep: ResultRow[] = [
    { label: '1 MiB', x: 1, series: 'clone', value: 3, unit: 'ms', baseline: true },
    { label: '1 MiB', x: 1, series: 'open', value: 0.05, unit: 'ms' },
    { label: '64 MiB', x: 64, series: 'clone', value: 250, unit: 'ms', baseline: true },
    { label: '64 MiB', x: 64, series: 'open', value: 0.05, unit: 'ms' },
  ]
  const table = groupTable(sweep)
  t.equal(table[0], '|  | clone | open |')
  t.equal(table[2], '| 1 MiB | 3.00 ms | 50.0 µs (60x) |')
  t.equal(table[3], '| 64 MiB | 250.00 ms | 50.0 µs (5,000x) |')
  t.equal(table.at(-1), '(Nx): how many times faster than clone (below 1: slower), at the same size.')
  const spreadRows: ResultRow[] = [
    { label: 'floor', value: 30, min: 25, max: 90, rounds: 5, unit: 'ms', baseline: true },
    { label: 'ours', value: 60, min: 50, max: 120, rounds: 5, unit: 'ms' },
  ]
  t.same(groupTable(spreadRows).slice(2, 4), [
    '| floor | 30.00 ms [25.00 ms – 90.00 ms, 5 rounds] | 1x |',
    '| ours | 60.00 ms [50.00 ms – 120.00 ms, 5 rounds] | 0.50x |',
  ], 'a median shows its spread; the ratio compares medians')
})

t.test('figures taken under load are marked in the report', async (t) => {
  const loaded: BenchResults = {
    name: 'shm',
    machine: { cpus: 2, node: 'v20.0.0', date: '2026-01-01' },
    loadAtStart: { loadavg: [7.5, 6, 5], cores: 2, overloaded: true },
    overloaded: true,
    rows: [{ label: 'a', value: 2, unit: 'ms' }],
  }
  const quiet: BenchResults = { ...loaded, name: 'worker', loadAtStart: { loadavg: [0.1, 0.2, 0.3], cores: 2, overloaded: false }, overloaded: undefined }
  const md = renderMarkdown([quiet, loaded])
  t.match(md, /## worker\n\n_2026-01-01, Node v20.0.0, 2 CPUs, load average 0.1 0.2 0.3 at start._\n\n\| measure/, 'a quiet run: its load, no warning')
  t.match(md, /## shm\n\n_2026-01-01, Node v20.0.0, 2 CPUs, load average 7.5 6 5 at start._\n\n> \*\*Warning: taken with the load average above the core count.\*\*/)
  t.equal(md.match(/Warning: taken with the load average/g)?.length, 1, 'only the loaded run is marked')
})

t.test('bench/stats: spreads, alternated rounds, the load line', async (t) => {
  t.same(spread([3, 1, 2, 10, 4]), { n: 5, min: 1, median: 3, max: 10, p99: 10 })
  const order: string[] = []
  const samples = await alternate(3, { a: () => { order.push('a'); return 1 }, b: async () => { order.push('b'); return 2 } })
  t.same(samples, { a: [1, 1, 1], b: [2, 2, 2] })
  t.same(order, ['a', 'b', 'b', 'a', 'a', 'b'], 'the order rotates from round to round')
  t.match(loadLine({ loadavg: [3, 2, 1], cores: 2, overloaded: true }), /^load average at start: 3 2 1 \(2 cores\)\nWARNING: the load average is above the core count/)
  t.equal(loadLine({ loadavg: [1, 2, 3], cores: 2, overloaded: false }), 'load average at start: 1 2 3 (2 cores)')
})

t.test('writeReport: README and charts from a results directory, bad files noted', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-bench-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const worker: BenchResults = {
    name: 'worker',
    title: 'Worker threads',
    machine: { cpus: 2, node: 'v20.0.0', date: '2026-01-01' },
    rows: [{ group: 'g', label: 'a', value: 2, unit: 'ms', baseline: true }, { group: 'g', label: 'b', value: 1, unit: 'ms' }],
    charts: [{ file: 'worker-open-vs-size', chart: line }, { file: '../escape', chart: line }],
  }
  writeFileSync(path.join(dir, 'worker.json'), JSON.stringify(worker))
  // The cluster bench's own minimal shape: name + rows only.
  writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify({ name: 'cluster', rows: [{ label: 'cross-node read', value: 900, unit: 'MB/s' }] }))
  writeFileSync(path.join(dir, 'broken.json'), '{ not json')
  const written = writeReport(dir)
  t.same(written, ['worker-open-vs-size.svg', 'README.md'])
  t.notOk(existsSync(path.join(dir, '..', 'escape.svg')), 'a chart name cannot leave the directory')
  const md = readFileSync(path.join(dir, 'README.md'), 'utf8')
  t.match(md, /## Worker threads\n\n_2026-01-01, Node v20.0.0, 2 CPUs._/)
  t.match(md, /!\[Open time vs size\]\(worker-open-vs-size\.svg\)/)
  t.match(md, /\| b \| 1\.00 ms \| 2\.00x \|/)
  t.match(md, /## cluster\n\n\| measure \| value \|\n\| --- \| --- \|\n\| cross-node read \| 900 MB\/s \|/)
  t.match(md, /broken\.json: not a results file/)
  t.match(md, /chart file name "\.\.\/escape" refused/)
  t.ok(md.indexOf('## Worker') < md.indexOf('## cluster'), 'benches in report order')
  t.equal(renderMarkdown([worker]), renderMarkdown([worker]), 'deterministic')
})

/** Run the built run-all with the given arguments, results in `dir`; resolves to its exit code and output. */
async function runAll (t: Test, dir: string, args: string[]): Promise<{ code: number | null, out: string }> {
  const child = spawn(process.execPath, [RUN_ALL, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PIXELPORT_BENCH_RESULTS: dir } })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { out += b.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, out }
}

// Running a real bench, even in quick mode, takes 15-30 s on the loaded 2-core machine (mostly process and
// server start-up), too long here: the fixture is the JSON `node dist/bench/worker.js --quick` wrote.
t.test('run-all --report-only: Markdown and SVG from a results directory', { skip: existsSync(RUN_ALL) ? false : 'not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-bench-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(FIXTURE, dir, { recursive: true })
  const { code, out } = await runAll(t, dir, ['--report-only'])
  t.equal(code, 0, out)
  t.notMatch(out, /=== bench:/, 'no bench ran')
  const results = JSON.parse(readFileSync(path.join(dir, 'worker.json'), 'utf8')) as BenchResults
  const svg = readFileSync(path.join(dir, 'worker-open-vs-size.svg'), 'utf8')
  t.equal(checkXml(svg).root, 'svg')
  t.same(legendTexts(svg), ['structured clone', 'transfer + back', 'Pixelport open by message', 'Pixelport open, no message'])
  t.equal((svg.match(/class="point"/g) ?? []).length, results.rows.filter((r) => r.x !== undefined).length, 'one marker per measured point')
  t.equal(checkXml(readFileSync(path.join(dir, 'worker-wake.svg'), 'utf8')).root, 'svg')
  const md = readFileSync(path.join(dir, 'README.md'), 'utf8')
  t.match(md, /!\[A worker thread getting at one image\]\(worker-open-vs-size\.svg\)/)
  t.match(md, /\| 8 MiB \| [\d.]+ (µs|ms|s) \| [\d.]+ (µs|ms|s) \([\d,.]+x\) \|/, 'a sweep row with ratios')
  t.match(md, /quick mode/)
  // Re-running changes nothing: commit-friendly.
  const again = await runAll(t, dir, ['--report-only'])
  t.equal(again.code, 0)
  t.equal(readFileSync(path.join(dir, 'worker-open-vs-size.svg'), 'utf8'), svg)
  t.equal(readFileSync(path.join(dir, 'README.md'), 'utf8'), md)
})

t.test('run-all refuses an unknown bench name', { skip: existsSync(RUN_ALL) ? false : 'not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-bench-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { code, out } = await runAll(t, dir, ['--only', 'nosuch'])
  t.equal(code, 2)
  t.match(out, /unknown bench nosuch \(known: worker, remote, shm, formats, cluster, soak\)/)
})
