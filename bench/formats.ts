/**
 * npm run bench:formats [-- --quick | --full] — what pictures cost: GET /images/:id.<format> end to end
 * (snapshot + encode + send over loopback) and POST /images with the same file (receive + decode + copy into
 * shared memory), for a VGA RGBA frame; with --full also a 4K one (its WebP encodes took most of
 * `npm run bench`'s time, so they are opt-in). The frames are camera-like: a smooth gradient with a little
 * noise (pure noise is the worst case for every compressor and would say little about real images).
 * Median, min and max over alternated rounds: each round encodes and decodes every format once.
 */
import { createServer } from '../server/server.js'
import { LOAD_AT_START, QUICK, spreadRow, writeResults, type ResultRow } from './results.js'
import { alternate, fmtBytes, fmtTime, loadLine, MIN_ROUNDS, spread, table } from './stats.js'

const quick = QUICK
const FULL = process.argv.includes('--full')
const ROUNDS = quick ? 2 : MIN_ROUNDS
const SIZES: Array<[number, number]> = FULL && !quick ? [[640, 480], [3840, 2160]] : [[640, 480]]
const FORMATS = ['png', 'jpeg', 'webp', 'webp?lossless=true', 'tiff']
const MIME: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', tiff: 'image/tiff' }

function cameraLike (width: number, height: number): Uint8Array {
  const px = new Uint8Array(width * height * 4)
  let seed = 12345
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0
      const noise = (seed >>> 28) - 8
      const i = (y * width + x) * 4
      px[i] = Math.max(0, Math.min(255, (x * 255) / width + noise))
      px[i + 1] = Math.max(0, Math.min(255, (y * 255) / height + noise))
      px[i + 2] = Math.max(0, Math.min(255, ((x + y) * 127) / (width + height) + 64 + noise))
      px[i + 3] = 255
    }
  }
  return px
}

async function time (fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

process.stdout.write(`pixelport bench:formats — median [min – max] of ${ROUNDS} alternated rounds${FULL ? '' : ' (VGA only; --full adds 4K)'}\n${loadLine(LOAD_AT_START)}\n\n`)
const server = await createServer({ port: 0, capacity: 1024 * 1024 * 1024, blockSize: 64 * 1024 * 1024 })
const url = await server.listen()
const rows: string[][] = []
const structured: ResultRow[] = []
try {
  for (const [w, h] of SIZES) {
    const id = `bench-${w}x${h}`
    await fetch(`${url}/images?width=${w}&height=${h}&mode=RGBA&id=${id}`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: cameraLike(w, h),
    })
    const files = new Map<string, Uint8Array>()
    const get = async (format: string): Promise<number> => {
      // A new generation each time, so nothing is served from a previous encode.
      await server.store.update(id, () => {})
      return await time(async () => { files.set(format, new Uint8Array(await (await fetch(`${url}/images/${id}.${format}`)).arrayBuffer())) })
    }
    const post = async (format: string): Promise<number> => {
      const file = files.get(format) ?? new Uint8Array(await (await fetch(`${url}/images/${id}.${format}`)).arrayBuffer())
      const ms = await time(async () => {
        const res = await fetch(`${url}/images?id=${id}-up`, { method: 'POST', headers: { 'content-type': MIME[format.split('?')[0]] }, body: file })
        if (res.status !== 201) throw new Error(`upload ${format}: ${res.status} ${await res.text()}`)
      })
      server.store.delete(`${id}-up`)
      return ms
    }
    for (const format of FORMATS) await get(format) // warm-up: the encoders' first use
    const cases = Object.fromEntries(FORMATS.flatMap((f) => [[`get ${f}`, () => get(f)], [`post ${f}`, () => post(f)]])) as Record<string, () => Promise<number>>
    const samples = await alternate(ROUNDS, cases)
    const group = `${w}×${h} RGBA (median, end to end over loopback)`
    for (const format of FORMATS) {
      const g = samples[`get ${format}`]
      const p = samples[`post ${format}`]
      const size = files.get(format)?.byteLength ?? 0
      rows.push([`${w}×${h} RGBA`, format, fmtBytes(size), fmtSpreadMs(g), fmtSpreadMs(p)])
      structured.push(
        spreadRow({ group, label: format, series: 'GET (snapshot + encode)', unit: 'ms' }, g),
        spreadRow({ group, label: format, series: 'POST (decode + store)', unit: 'ms' }, p),
        { group, label: format, series: 'file size', value: size, unit: 'bytes' },
      )
    }
  }
} finally {
  await server.close()
}

function fmtSpreadMs (xs: number[]): string {
  const s = spread(xs)
  return `${fmtTime(s.median)} [${fmtTime(s.min)} – ${fmtTime(s.max)}]`
}
console.log(table(['image', 'format', 'file', 'GET (snapshot + encode)', 'POST (decode + store)'], rows))

// bench/results/formats.json; the chart shows the largest frame measured (4K with --full), where encoding dominates.
const [bigW, bigH] = SIZES[SIZES.length - 1]
const big = structured.filter((r) => r.group!.startsWith(`${bigW}×${bigH}`))
const timeSeries = ['GET (snapshot + encode)', 'POST (decode + store)']
writeResults('formats', {
  title: 'Picture formats (npm run bench:formats)',
  note: 'GET /images/:id.<format> (snapshot + encode + send) and POST /images with the same file (receive + decode + store), camera-like frames.',
  rows: structured,
  charts: [{
    file: 'formats',
    chart: {
      kind: 'bar',
      title: `Encoding and decoding a ${bigW}×${bigH} RGBA frame`,
      subtitle: 'median time end to end over loopback HTTP',
      categories: FORMATS,
      value: { label: 'time', unit: 'ms' },
      series: timeSeries.map((name) => ({ name, values: FORMATS.map((f) => big.find((r) => r.label === f && r.series === name)?.value ?? null) })),
    },
  }],
})
