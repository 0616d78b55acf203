/**
 * One colour module (protocol/colour.ts): for every mode, and raw shapes of the other dtypes, the viewer's
 * canvas in Chromium holds exactly the pixels of the server's PNG of the same image (decoded with sharp).
 * 16-bit PNGs keep 16 bits, so their samples are brought to 8 bits as documented (round(v / 257)) before
 * comparing. Alpha is opaque: a canvas stores premultiplied colour, which would blur translucent pixels.
 */
import type { Browser } from 'playwright-core'
import sharp from 'sharp'
import t from 'tap'
import { RemoteClient } from '../../client/remote/index.js'
import { MODES } from '../../protocol/modes.js'
import { ensureViewerBuilt, launch, skip, watchErrors } from '../helpers/browser.js'
import { startServer } from '../helpers/server.js'

const WIDTH = 24
const HEIGHT = 10

interface Case { id: string, spec: Record<string, unknown>, bytes: Uint8Array }

/** Deterministic noise, so a failure can be reproduced. */
function noise (count: number, seed: number): Uint8Array {
  const out = new Uint8Array(count)
  let x = seed >>> 0 || 1
  for (let i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** Random samples of `typestr` for `count` elements; floats with NaN and ±∞ among them. */
function samples (typestr: string, count: number, channels: number, alpha: boolean, seed: number): Uint8Array {
  const size = Number(typestr.slice(2))
  const bytes = noise(count * size, seed)
  const view = new DataView(bytes.buffer)
  const little = typestr[0] !== '>'
  if (typestr.endsWith('b1')) bytes.forEach((v, i) => { bytes[i] = v & 1 })
  if (typestr[1] === 'f') {
    for (let i = 0; i < count; i++) {
      const v = (view.getUint16(i * size, true) - 30000) / 7
      if (size === 4) view.setFloat32(i * size, v, little)
      else view.setFloat64(i * size, v, little)
    }
    const special = [NaN, Infinity, -Infinity]
    special.forEach((v, k) => size === 4 ? view.setFloat32((k * 7) * size, v, little) : view.setFloat64((k * 7) * size, v, little))
  }
  if (alpha) {
    // The last channel of every pixel opaque: the dtype's largest value (0x7f… for signed integers).
    const signed = typestr[1] === 'i'
    for (let i = channels - 1; i < count; i += channels) {
      for (let k = 0; k < size; k++) bytes[i * size + k] = 0xff
      if (signed) bytes[i * size + (little ? size - 1 : 0)] = 0x7f
    }
  }
  return bytes
}

const ALPHA_MODES = new Set(['LA', 'PA', 'RGBA'])

function cases (): Case[] {
  const list: Case[] = []
  MODES.forEach((mode, n) => {
    const channels = mode.channels
    list.push({
      id: `colour/mode-${mode.name.replace(';', '-')}`,
      spec: { width: WIDTH, height: HEIGHT, mode: mode.name },
      bytes: samples(mode.typestr, WIDTH * HEIGHT * channels, channels, ALPHA_MODES.has(mode.name), 1000 + n),
    })
  })
  const raw: Array<[string, number]> = [['<f4', 3], ['>u2', 2], ['<i8', 1], ['|i1', 4], ['>f8', 1], ['<u4', 3]]
  raw.forEach(([typestr, channels], n) => {
    const shape = channels === 1 ? [HEIGHT, WIDTH] : [HEIGHT, WIDTH, channels]
    list.push({
      id: `colour/raw-${n}`,
      spec: { shape, typestr },
      bytes: samples(typestr, WIDTH * HEIGHT * channels, channels, channels === 2 || channels === 4, 2000 + n),
    })
  })
  return list
}

/** The PNG as 8-bit RGBA: 16-bit samples as round(v / 257), grey as r = g = b, opaque when no alpha. */
async function pngAsRgba (png: Buffer): Promise<Uint8Array> {
  const image = sharp(png)
  const { depth } = await image.metadata()
  const sixteen = depth === 'ushort'
  const { data, info } = await image.toColourspace(sixteen ? 'rgb16' : 'srgb').ensureAlpha().raw({ depth: sixteen ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true })
  if (info.channels !== 4) throw new Error(`sharp gave ${info.channels} channels`)
  if (!sixteen) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const words = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
  return Uint8Array.from(words, (v) => Math.round(v / 257))
}

const READ_CANVAS = `(() => {
  const canvas = document.getElementById('canvas')
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
  return { width: canvas.width, height: canvas.height, rgba: Array.from(data) }
})()`

let browser: Browser

t.before(async () => {
  if (skip !== false) return
  await ensureViewerBuilt()
  browser = await launch(t)
})

t.test('the canvas equals the server\'s PNG, for every mode and dtype', { skip }, async (t) => {
  const { url } = await startServer(t)
  const client = await RemoteClient.connect(url)
  t.teardown(() => client.close())
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } })
  t.teardown(() => context.close())
  // One page for all: the fragment chooses the image shown (a new page per image would take a second each).
  const page = await context.newPage()
  const errors = watchErrors(page)
  await page.goto(`${url}/`)

  for (const c of cases()) {
    await t.test(`${c.id} ${JSON.stringify(c.spec)}`, async (t) => {
      await client.put({ id: c.id, ...c.spec }, c.bytes)
      await page.evaluate(`location.hash = ${JSON.stringify(`#image=${encodeURIComponent(c.id)}`)}`)
      await page.waitForFunction(([id, width]) => {
        const document = (globalThis as any).document
        const canvas = document.getElementById('canvas')
        return document.getElementById('live-title').textContent === id && canvas.dataset.generation !== undefined && canvas.width === width
      }, [c.id, WIDTH] as const)
      const shown = await page.evaluate(READ_CANVAS) as { width: number, height: number, rgba: number[] }
      const res = await fetch(`${url}/images/${encodeURIComponent(c.id)}.png`)
      t.equal(res.status, 200, 'GET .png')
      const png = await pngAsRgba(Buffer.from(await res.arrayBuffer()))
      t.equal(`${shown.width}×${shown.height}`, `${WIDTH}×${HEIGHT}`, 'the canvas has the image\'s size')
      let differ = 0
      let first = -1
      for (let i = 0; i < png.length; i++) {
        if (png[i] !== shown.rgba[i]) { differ++; if (first < 0) first = i }
      }
      const pixel = first - (first % 4)
      const where = first < 0 ? '' : ` (first at byte ${first}: canvas ${shown.rgba.slice(pixel, pixel + 4).join(',')}, PNG ${[...png.subarray(pixel, pixel + 4)].join(',')})`
      t.equal(differ, 0, `canvas and PNG agree${where}`)
    })
  }
  t.same(errors, [], 'no errors in the page')
})
