/**
 * Region-of-interest gets are byte-exact for every layout and dtype, and copy only the rectangle.
 */
import fc from 'fast-check'
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'

function pattern (n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 29 + seed * 11 + (i >>> 7)) & 0xff
  return b
}

/** The rectangle cut out of C-order bytes of an image `width` pixels wide with `pixel` bytes per pixel. */
function crop (bytes: Buffer, width: number, pixel: number, r: { x: number, y: number, width: number, height: number }): Buffer {
  const out = Buffer.alloc(r.width * r.height * pixel)
  for (let row = 0; row < r.height; row++) {
    bytes.copy(out, row * r.width * pixel, ((r.y + row) * width + r.x) * pixel, ((r.y + row) * width + r.x + r.width) * pixel)
  }
  return out
}

t.test('random regions of every kind of image match the same rectangle of the whole image', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 2048 })
  const images: Array<{ id: string, width: number, height: number, pixel: number }> = []
  const add = (id: string, request: Record<string, unknown>, pixel: number): void => {
    const d = server.store.create({ id, ...request } as never)
    images.push({ id, width: d.width, height: d.height, pixel })
  }
  add('rgb', { width: 37, height: 23, mode: 'RGB' }, 3)
  add('u16', { width: 31, height: 17, mode: 'I;16' }, 2)
  add('f32', { width: 19, height: 29, mode: 'F' }, 4)
  add('be16', { width: 13, height: 11, mode: 'I;16B' }, 2)
  add('i16x5', { shape: [21, 9, 5], typestr: '<i2' }, 10)
  add('f64x2x2', { shape: [7, 6, 2, 2], typestr: '<f8' }, 32)
  add('lines', { width: 33, height: 40, mode: 'RGBA', layout: 'lines' }, 4)
  add('framed', { width: 25, height: 15, mode: 'LA', frames: 2 }, 2)
  add('column', { shape: [50], typestr: '<u4' }, 4)
  for (const img of images) await server.store.write(img.id, pattern(img.width * img.height * img.pixel, img.id.length))
  server.store.create({ id: 'base', width: 64, height: 40, mode: 'RGBA' }, pattern(64 * 40 * 4, 99))
  const view = server.store.createView('base', { id: 'view', x: 11, y: 5, width: 30, height: 20 })
  images.push({ id: 'view', width: view.width, height: view.height, pixel: 4 })

  const c = await WireClient.connect(t, url)
  const whole = new Map<string, Buffer>()
  for (const img of images) whole.set(img.id, (await c.get(img.id)).bytes)

  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...images).chain((img) => fc.record({
      img: fc.constant(img),
      x: fc.nat({ max: img.width - 1 }),
      y: fc.nat({ max: img.height - 1 }),
    }).chain(({ img, x, y }) => fc.record({
      img: fc.constant(img),
      region: fc.record({ x: fc.constant(x), y: fc.constant(y), width: fc.integer({ min: 1, max: img.width - x }), height: fc.integer({ min: 1, max: img.height - y }) }),
    }))),
    async ({ img, region }) => {
      const got = await c.get(img.id, { region })
      const expected = crop(whole.get(img.id)!, img.width, img.pixel, region)
      if (!got.bytes.equals(expected)) throw new Error(`${img.id} ${JSON.stringify(region)} differs`)
      if (got.frame.byteLength !== expected.length || got.frame.region?.width !== region.width) throw new Error('frame header wrong')
    },
  ), { numRuns: 150 })
  t.same(c.invalid, [])
  t.pass('150 random regions byte-exact')
})

t.test('a region costs no snapshot; an older generation is cropped from the snapshot that holds it', async (t) => {
  const { url, server } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const v0 = pattern(100 * 80 * 3, 1)
  server.store.create({ id: 'r', width: 100, height: 80, mode: 'RGB' }, v0)
  const region = { x: 10, y: 20, width: 30, height: 15 }
  const copiesBefore = server.snapshots.stats().copies
  const got = await c.get('r', { region })
  t.same(got.frame.shape, [15, 30, 3])
  t.ok(got.bytes.equals(crop(v0, 100, 3, region)))
  t.equal(server.snapshots.stats().copies, copiesBefore, 'no whole-image copy for a region')

  const held = await server.snapshots.acquire('r')
  await server.store.write('r', pattern(100 * 80 * 3, 2))
  const old = await c.get('r', { region, generation: 0 })
  t.equal(old.frame.generation, 0)
  t.ok(old.bytes.equals(crop(v0, 100, 3, region)), 'generation 0, from the held snapshot')
  held.release()

  const full = await c.get('r', { region: { x: 0, y: 0, width: 100, height: 80 } })
  t.same(full.frame.region, { x: 0, y: 0, width: 100, height: 80 })
  t.equal(full.frame.generation, 1)

  t.match(await c.request({ op: 'get', id: 'r', region: { x: 90, y: 0, width: 11, height: 1 } }), { op: 'error', code: 'PXP_ERR_BAD_REGION' })
  t.match(await c.request({ op: 'get', id: 'r', region: { x: 0, y: 80, width: 1, height: 1 } }), { op: 'error', code: 'PXP_ERR_BAD_REGION' })
})
