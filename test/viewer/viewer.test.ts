/**
 * The live viewer end to end: a real server with the demo images and the demo producer (a worker thread
 * publishing an animated pattern), Debian's Chromium driven by playwright-core (one browser for the file).
 * The page must be cross-origin isolated, open the demo at once, list the images with server-side thumbnails
 * that follow a live image, and draw exactly the pixels the server published, generation after generation.
 * Without the demo it opens the first image that changes. (With tokens: viewer-auth.test.ts; layout and
 * screenshots: layout.test.ts.)
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { RemoteClient } from '../../client/remote/index.js'
import { addDemoImages } from '../../examples/demo/demo-images.js'
import type { PixelportServer } from '../../server/server.js'
import { BUILT, moduleUrl } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/until.js'
import { ensureViewerBuilt, launch, skip, watchErrors } from '../helpers/browser.js'

const WIDTH = 320
const HEIGHT = 240

/**
 * The demo producer (built when the tests run built: a plain worker starts in milliseconds). Smaller and
 * slower than `--demo`'s (640×480 at 30 fps): the test machine is shared.
 */
function startProducer (server: PixelportServer, id = 'demo/pattern'): void {
  const workerData = { id, width: WIDTH, height: HEIGHT, fps: 15 }
  server.spawnWorker(moduleUrl('examples/demo/pattern-worker'), BUILT ? { workerData } : { workerData, execArgv: process.execArgv })
}

/** The canvas's pixels (RGBA, base64) and the generation drawn, read in one go so they belong together. */
const READ_CANVAS = `(() => {
  const canvas = document.getElementById('canvas')
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
  let text = ''
  for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000))
  return { generation: Number(canvas.dataset.generation), width: canvas.width, height: canvas.height, rgba: btoa(text) }
})()`

interface CanvasPixels { generation: number, width: number, height: number, rgba: string }

async function readCanvas (page: Page): Promise<{ generation: number, width: number, height: number, rgba: Buffer }> {
  const read = await page.evaluate(READ_CANVAS) as CanvasPixels
  return { ...read, rgba: Buffer.from(read.rgba, 'base64') }
}

function countDifferences (a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) return Math.max(a.byteLength, b.byteLength)
  let differ = 0
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) differ++
  return differ
}

async function shownGeneration (page: Page): Promise<number> {
  const text = await page.textContent('#stat-generation')
  return /^\d+$/.test(text ?? '') ? Number(text) : -1
}

/** The `src` of a tile's thumbnail (functions, not strings, for waitForFunction: the page's CSP forbids eval). */
const thumbSrc = (id: string): string => (globalThis as any).document.querySelector(`li[data-id="${id}"] img`).src as string

let browser: Browser

t.before(async () => {
  if (skip !== false) return
  await ensureViewerBuilt()
  browser = await launch(t)
})

t.test('the live viewer shows the demo images and follows the producer', { skip }, async (t) => {
  const { server, url } = await startServer(t)
  addDemoImages(server.store)
  startProducer(server)

  // The server's own pixels, every generation, for comparing with what the page draws.
  const reference = await RemoteClient.connect(url.replace(/^http/, 'ws') + '/ws')
  t.teardown(() => reference.close())
  const published = new Map<number, Buffer>()
  const feed = await reference.subscribe({ ids: ['demo/pattern'], policy: 'all', data: true, queue: 1024 })
  void (async () => {
    for await (const event of feed) {
      if (event.bytes === undefined) continue
      published.set(event.generation, Buffer.from(event.bytes))
      // Only the last few seconds: the page shows a frame within moments of its publication.
      for (const generation of published.keys()) if (generation < event.generation - 150) published.delete(generation)
    }
  })().catch(() => {})

  // The page opens the demo when it is there on arrival (else the first image that changes).
  await until(() => server.store.has('demo/pattern'), { what: 'the producer to create demo/pattern' })
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const errors = watchErrors(page)
  const pictures: string[] = []
  page.on('request', (req) => { if (/\/images\/[^/?]+\.(png|webp|jpe?g|tiff?)/.test(req.url())) pictures.push(req.url()) })
  const response = await page.goto(url + '/')
  t.equal(response?.status(), 200, 'GET / serves the page')
  const headers = response?.headers() ?? {}
  t.equal(headers['cross-origin-opener-policy'], 'same-origin', 'COOP')
  t.equal(headers['cross-origin-embedder-policy'], 'require-corp', 'COEP')
  t.match(headers['content-type'], /^text\/html/)
  t.equal(await page.evaluate('self.crossOriginIsolated'), true, 'the page is cross-origin isolated')
  t.equal(await page.evaluate('typeof SharedArrayBuffer'), 'function', 'and may use SharedArrayBuffer')
  await page.waitForSelector('#isolated:text("true")')

  // Alive on arrival: the animated demo opens by itself, and its frames come in.
  await page.waitForFunction(() => Number((globalThis as any).document.getElementById('canvas').dataset.generation) >= 0)
  t.equal(await page.textContent('#live-title'), 'demo/pattern', 'the demo opens without a click')
  t.ok(page.url().endsWith('#image=demo%2Fpattern'), 'and the URL names it')
  t.match(await page.textContent('#live-about'), /frame number in binary/, 'the strip along its bottom is explained')

  // The list, with thumbnails: small pictures the server derives (192×144 inside: 144×144 of 256×256).
  for (const id of ['demo/gradient', 'demo/depth16', 'demo/checker-lines', 'demo/pattern']) {
    await page.waitForSelector(`li[data-id="${id}"]`)
  }
  await page.waitForFunction(() => (globalThis as any).document.querySelector('li[data-id="demo/gradient"] img').naturalWidth === 144)
  t.pass('thumbnails load')
  // The live image's thumbnail follows it, about once a second.
  await page.waitForFunction(() => (globalThis as any).document.querySelector('li[data-id="demo/pattern"] img').src.startsWith('blob:'))
  const before = await page.evaluate(thumbSrc, 'demo/pattern')
  await page.waitForFunction((before) => (globalThis as any).document.querySelector('li[data-id="demo/pattern"] img').src !== before, before, { timeout: 5000 })
  t.pass('the live image\'s thumbnail refreshes')
  t.ok(pictures.length > 0 && pictures.every((u) => /\?width=\d+&height=\d+&fit=inside/.test(u)), `only server-side thumbnails are fetched, no full frames (${pictures.length})`)

  // A still image: the canvas holds exactly its pixels (RGB on the server, RGBA on the canvas).
  await page.click('li[data-id="demo/gradient"] button')
  await page.waitForFunction(() => (globalThis as any).document.getElementById('canvas').dataset.generation !== undefined && (globalThis as any).document.getElementById('canvas').width === 256)
  const gradient = await readCanvas(page)
  const rgb = (await reference.get('demo/gradient')).bytes
  const expected = Buffer.alloc(256 * 256 * 4, 255)
  for (let p = 0; p < 256 * 256; p++) rgb.subarray(p * 3, p * 3 + 3).forEach((v, c) => { expected[p * 4 + c] = v })
  t.equal(countDifferences(gradient.rgba, expected), 0, 'demo/gradient on the canvas is the server\'s pixels')

  // The live image: the generation shown goes up while the producer publishes.
  await page.click('li[data-id="demo/pattern"] button')
  await page.waitForFunction(() => /^\d+$/.test((globalThis as any).document.getElementById('stat-generation').textContent))
  const first = await shownGeneration(page)
  await page.waitForFunction((first) => Number((globalThis as any).document.getElementById('stat-generation').textContent) > first, first)
  t.ok(await shownGeneration(page) > first, `the generation shown increases (from ${first})`)
  t.match(await page.textContent('#live-info'), `RGBA ${WIDTH}×${HEIGHT}`)
  t.ok(page.url().endsWith('#image=demo%2Fpattern'), 'the URL names the image shown')

  const dir = t.testdir({})
  const file = path.join(dir, 'viewer.png')
  await page.screenshot({ path: file })
  const png = await readFile(file)
  t.ok(png.byteLength > 10_000, `a screenshot (${png.byteLength} bytes)`)
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'that is a PNG')

  // What the canvas shows is exactly what the server published as that generation, at two moments. The
  // reference client misses some generations too (updates from workers are latest-wins), so look until
  // the page shows one it has.
  const moments: Array<{ generation: number, rgba: Buffer }> = []
  let seen = -1
  for (let attempt = 0; moments.length < 2 && attempt < 40; attempt++) {
    await page.waitForFunction((seen) => Number((globalThis as any).document.getElementById('canvas').dataset.generation) > seen, seen)
    const shown = await readCanvas(page)
    seen = shown.generation
    // The reference client may be a moment behind the page.
    await until(() => published.has(shown.generation) || (published.size > 0 && Math.max(...published.keys()) >= shown.generation),
      { what: `the reference client to reach generation ${shown.generation}`, interval: 20 })
    const theirs = published.get(shown.generation)
    if (theirs === undefined) continue
    t.equal(`${shown.width}×${shown.height}`, `${WIDTH}×${HEIGHT}`, 'the canvas has the image\'s size')
    t.equal(countDifferences(shown.rgba, theirs), 0, `generation ${shown.generation}: the canvas holds the published pixels`)
    moments.push(shown)
  }
  if (moments.length === 2) {
    t.ok(countDifferences(moments[0].rgba, moments[1].rgba) > 0, 'the picture changed between the two moments')
    t.ok(new Set(moments[0].rgba).size > 2, 'and it is not uniform')
  } else {
    t.fail(`the page showed no two generations the reference client received (${moments.length})`)
  }

  await page.waitForFunction(() => Number((globalThis as any).document.getElementById('stat-fps').textContent) > 0)
  t.match(await page.textContent('#stat-skipped'), /^\d+$/, 'skipped frames are counted')
  t.same(errors, [], 'no errors in the page')
})

t.test('the URL fragment chooses; without the demo, the first image that changes opens', { skip }, async (t) => {
  const { server, url } = await startServer(t)
  addDemoImages(server.store)
  startProducer(server, 'cam/live')
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const errors = watchErrors(page)

  await page.goto(`${url}/#image=demo%2Fdepth16`)
  await page.waitForFunction(() => (globalThis as any).document.getElementById('canvas').width === 256)
  t.equal(await page.textContent('#live-title'), 'demo/depth16', 'the image the URL names')

  // The page gives a live image a moment (PICK_LIVE_MS) to show itself before it opens the first listed one:
  // the producer thread must be producing by then (it may start slowly on a loaded machine).
  await until(() => server.store.has('cam/live') && server.store.describe('cam/live').generation >= 2, { what: 'the producer to commit cam/live', timeout: 20_000 })
  const fresh = await context.newPage()
  errors.push(...watchErrors(fresh))
  await fresh.goto(`${url}/`)
  await fresh.waitForFunction(() => (globalThis as any).document.getElementById('live-title').textContent === 'cam/live')
  await fresh.waitForFunction(() => Number((globalThis as any).document.getElementById('canvas').dataset.generation) >= 0)
  t.pass('the live image opens by itself (demo/pattern is absent)')
  t.ok(fresh.url().endsWith('#image=cam%2Flive'))
  t.same(errors, [], 'no errors in the pages')
})
