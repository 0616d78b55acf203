/**
 * npx tsx bench/formats.ts [--quick] — what pictures cost: GET /images/:id.<format> end to end (snapshot +
 * encode + send over loopback) and POST /images with the same file (receive + decode + copy into shared
 * memory), for a VGA and a 4K RGBA frame. The frames are camera-like: a smooth gradient with a little noise
 * (pure noise is the worst case for every compressor and would say little about real images).
 */
import { createServer } from '../server/server.js'
import { QUICK, sig, writeResults, type ResultRow } from './results.js'
import { fmtBytes, fmtTime, median, table } from './stats.js'

const quick = QUICK
const ITER = quick ? 2 : 5
const SIZES: Array<[number, number]> = [[640, 480], [3840, 2160]]
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
    for (const format of FORMATS) {
      const path = `${url}/images/${id}.${format}`
      let file = new Uint8Array(0)
      const get: number[] = []
      for (let i = 0; i < ITER; i++) {
        // A new generation each time, so nothing is served from a previous encode.
        await server.store.update(id, () => {})
        get.push(await time(async () => { file = new Uint8Array(await (await fetch(path)).arrayBuffer()) }))
      }
      const post: number[] = []
      const type = MIME[format.split('?')[0]]
      for (let i = 0; i < ITER; i++) {
        post.push(await time(async () => {
          const res = await fetch(`${url}/images?id=${id}-up`, { method: 'POST', headers: { 'content-type': type }, body: file })
          if (res.status !== 201) throw new Error(`upload ${format}: ${res.status} ${await res.text()}`)
        }))
        server.store.delete(`${id}-up`)
      }
      rows.push([`${w}×${h} RGBA`, format, fmtBytes(file.byteLength), fmtTime(median(get)), fmtTime(median(post))])
      const group = `${w}×${h} RGBA (median, end to end over loopback)`
      structured.push(
        { group, label: format, series: 'GET (snapshot + encode)', value: sig(median(get)), unit: 'ms' },
        { group, label: format, series: 'POST (decode + store)', value: sig(median(post)), unit: 'ms' },
        { group, label: format, series: 'file size', value: file.byteLength, unit: 'bytes' },
      )
    }
  }
} finally {
  await server.close()
}
console.log(table(['image', 'format', 'file', 'GET (snapshot + encode)', 'POST (decode + store)'], rows))

// bench/results/formats.json; the chart shows the 4K frame, where encoding dominates.
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
