/**
 * Picture uploads that must fail, and fail cheaply: garbage, truncated and lying files, other formats,
 * decompression bombs, bodies over the limit, fields the file already defines. Every failure leaves the
 * store exactly as it was.
 */
import http from 'node:http'
import sharp from 'sharp'
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { chunked, postPicture, rawRequest, storeState } from '../helpers/http.js'
import { buildPng, encodeWithSharp, pattern, pngBomb, rowsOf } from '../helpers/picture-files.js'

const W = 16
const H = 12

t.test('files that are not a PNG/JPEG/WebP/TIFF, or are broken, are PXP_ERR_BAD_IMAGE; the store is unchanged', async (t) => {
  const { url, server } = await startServer(t)
  await postPicture(url, await encodeWithSharp(pattern(W * H * 3), W, H, 3, 'png'), 'image/png', { id: 'keep' })
  const before = storeState(server)
  const png = await encodeWithSharp(pattern(W * H * 3, 2), W, H, 3, 'png')
  const jpeg = await encodeWithSharp(pattern(W * H * 3, 3), W, H, 3, 'jpeg')
  const webp = await encodeWithSharp(pattern(W * H * 3, 4), W, H, 3, 'webp')
  const tiff = await encodeWithSharp(pattern(W * H * 3, 5), W, H, 3, 'tiff', { compression: 'lzw' })
  const gif = await sharp(pattern(W * H * 3), { raw: { width: W, height: H, channels: 3 } }).gif().toBuffer()
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')
  // A header for 16 rows with pixel data for 4: the decoder runs out of data.
  const short = buildPng({ width: W, height: H, bitDepth: 8, colorType: 2, rows: rowsOf(pattern(W * 3 * 4), W * 3) })
  const corruptCrc = Buffer.from(png)
  corruptCrc[40] ^= 0xff
  const cases: Array<[string, Uint8Array, string]> = [
    ['empty body', new Uint8Array(0), 'image/png'],
    ['text', Buffer.from('definitely not a picture'), 'image/png'],
    ['random bytes', pattern(4096, 11), 'image/jpeg'],
    ['GIF', gif, 'image/png'],
    ['SVG', svg, 'image/png'],
    ['PNG signature only', png.subarray(0, 8), 'image/png'],
    ['PNG cut in the middle', png.subarray(0, Math.floor(png.length / 2)), 'image/png'],
    ['PNG with a corrupt chunk', corruptCrc, 'image/png'],
    ['PNG with rows missing', short, 'image/png'],
    ['JPEG cut in the middle', jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg'],
    ['JPEG header only', jpeg.subarray(0, 20), 'image/jpeg'],
    ['WebP cut in the middle', webp.subarray(0, Math.floor(webp.length / 2)), 'image/webp'],
    ['TIFF cut in the middle', tiff.subarray(0, Math.floor(tiff.length / 2)), 'image/tiff'],
    ['TIFF header only', tiff.subarray(0, 8), 'image/tiff'],
  ]
  for (const [name, body, type] of cases) {
    const res = await postPicture(url, body, type, { id: 'bad' })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.body.code, 'PXP_ERR_BAD_IMAGE', `${name}: ${res.body.message}`)
    t.same(storeState(server), before, `${name}: store unchanged`)
  }
  // The id was never taken for good: a valid picture may now use it.
  t.equal((await postPicture(url, png, 'image/png', { id: 'bad' })).status, 201)
})

t.test('decompression bombs are refused from the header, before any pixel is decoded', async (t) => {
  const { url, server } = await startServer(t, { maxImageBytes: 8 * 1024 * 1024 })
  const before = storeState(server)
  // 20000 x 20000 RGBA = 1.6 GB of pixels in a file of a few hundred bytes.
  const bomb = pngBomb(20000, 20000)
  t.ok(bomb.byteLength < 1024, `the bomb is ${bomb.byteLength} bytes`)
  const started = performance.now()
  let res = await postPicture(url, bomb, 'image/png', { id: 'bomb' })
  const elapsed = performance.now() - started
  t.equal(res.status, 413)
  t.equal(res.body.code, 'PXP_ERR_TOO_LARGE')
  t.match(res.body.message, /1600000000 bytes exceeds the per-image limit of 8388608/)
  t.ok(elapsed < 1000, `refused in ${elapsed.toFixed(0)} ms, without decoding`)
  t.same(storeState(server), before)

  // Wider than the largest dimension (65536) though small in bytes: refused by its width.
  res = await postPicture(url, buildPng({ width: 70000, height: 1, bitDepth: 1, colorType: 0, rows: [new Uint8Array(8750)] }), 'image/png')
  t.equal(res.status, 400)
  t.equal(res.body.code, 'PXP_ERR_BAD_SHAPE')
  t.same(storeState(server), before)

  // The largest dimension as configured, also for pictures.
  const narrow = await startServer(t, { maxDimension: 100 })
  res = await postPicture(narrow.url, await encodeWithSharp(pattern(101 * 2), 101, 2, 1, 'png'), 'image/png')
  t.equal(res.body.code, 'PXP_ERR_BAD_SHAPE')
  t.equal(narrow.server.store.size, 0)

  // More memory than the store has left: PXP_ERR_CAPACITY, nothing kept.
  const small = await startServer(t, { capacity: 4 * 1024 * 1024, blockSize: 4 * 1024 * 1024 })
  const big = await encodeWithSharp(new Uint8Array(1200 * 1000 * 3), 1200, 1000, 3, 'png')
  t.equal((await postPicture(small.url, big, 'image/png', { id: 'a' })).status, 201, 'the first fits')
  const smallBefore = storeState(small.server)
  res = await postPicture(small.url, big, 'image/png', { id: 'b' })
  t.equal(res.status, 507)
  t.equal(res.body.code, 'PXP_ERR_CAPACITY')
  t.same(storeState(small.server), smallBefore)
})

t.test('bodies over the limit are refused, declared or chunked', async (t) => {
  const maxImageBytes = 64 * 1024
  const { url, server } = await startServer(t, { maxImageBytes })
  const before = storeState(server)
  // Incompressible, so the file is larger than the limit plus the container allowance.
  const huge = pattern(1024 * 1024, 5)
  const declared = await rawRequest(url, {
    method: 'POST', path: '/images?id=x', headers: { 'content-type': 'image/png', 'content-length': huge.byteLength }, body: huge.subarray(0, 1024),
  })
  t.equal(declared.status, 413, 'Content-Length over the limit: refused before the body is read')
  t.equal(JSON.parse(declared.body.toString()).code, 'PXP_ERR_BODY_TOO_LARGE')
  t.equal(declared.headers.connection, 'close')

  const res = await postPicture(url, chunked(huge.subarray(0, 300_000), huge.subarray(300_000)), 'image/png', { id: 'x' })
  t.equal(res.status, 413, 'chunked: refused once it passes the limit')
  t.equal(res.body.code, 'PXP_ERR_BODY_TOO_LARGE')
  t.same(storeState(server), before)
})

t.test('a client that goes away mid-upload leaves nothing behind', async (t) => {
  const { url, server } = await startServer(t)
  const png = await encodeWithSharp(pattern(W * H * 4), W, H, 4, 'png')
  const before = storeState(server)
  for (const declared of [png.byteLength, undefined]) {
    let arrived!: () => void
    const arrival = new Promise<void>((resolve) => { arrived = resolve })
    const closed = new Promise<void>((resolve) => {
      server.app.server.once('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
        arrived()
        res.once('close', () => resolve())
      })
    })
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'image/png' }
    if (declared !== undefined) headers['content-length'] = declared
    const req = http.request(url + '/images?id=cut', { method: 'POST', headers, agent: false })
    req.on('error', () => {})
    req.write(png.subarray(0, 100))
    await arrival
    req.destroy()
    await closed
    t.same(storeState(server), before, `${declared === undefined ? 'chunked' : 'Content-Length'}: store as it was`)
  }
  t.equal((await postPicture(url, png, 'image/png', { id: 'cut' })).status, 201, 'the id is free')
})

t.test('query fields the file defines itself are PXP_ERR_VALIDATION; schema limits still apply', async (t) => {
  const { url, server } = await startServer(t)
  const png = await encodeWithSharp(pattern(W * H), W, H, 1, 'png')
  const queries: Array<Record<string, string | number>> = [{ width: W }, { mode: 'L' }, { shape: `${H},${W}` }, { typestr: '|u1' }, { width: W, height: H, mode: 'L' }]
  for (const query of queries) {
    const res = await postPicture(url, png, 'image/png', query)
    t.equal(res.status, 400, JSON.stringify(query))
    t.equal(res.body.code, 'PXP_ERR_VALIDATION')
  }
  let res = await postPicture(url, png, 'image/png', { bogus: 1 })
  t.equal(res.body.code, 'PXP_ERR_VALIDATION', 'unknown query field')
  res = await postPicture(url, png, 'image/png', { id: '../etc' })
  t.equal(res.body.code, 'PXP_ERR_BAD_ID')
  res = await postPicture(url, png, 'image/png', { frames: 2, layout: 'lines' })
  t.equal(res.body.code, 'PXP_ERR_VALIDATION', 'frames need a block layout')
  res = await postPicture(url, png, 'image/gif')
  t.equal(res.status, 415)
  t.equal(res.body.code, 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE')
  t.equal(server.store.size, 0)
})

t.test('concurrent uploads: one id, one winner; good and bad files side by side leave a consistent store', async (t) => {
  const { url, server } = await startServer(t)
  const png = await encodeWithSharp(pattern(64 * 48 * 3), 64, 48, 3, 'png')
  const same = await Promise.all(Array.from({ length: 8 }, () => postPicture(url, png, 'image/png', { id: 'contested' })))
  t.equal(same.filter((r) => r.status === 201).length, 1, 'exactly one create wins')
  t.ok(same.filter((r) => r.status !== 201).every((r) => r.status === 409 && r.body.code === 'PXP_ERR_ALREADY_EXISTS'))

  const bad = png.subarray(0, png.length - 30)
  const mixed = await Promise.all(Array.from({ length: 24 }, (_, i) => postPicture(url, i % 2 === 0 ? png : bad, 'image/png', { id: `m${i}` })))
  t.same(mixed.map((r) => r.status), Array.from({ length: 24 }, (_, i) => i % 2 === 0 ? 201 : 400))
  t.equal(server.store.size, 13)
  const stats = server.store.stats()
  t.equal(stats.used, 13 * 64 * 48 * 3 + 13 * (Math.ceil(64 * 48 * 3 / 64) * 64 - 64 * 48 * 3), 'memory of failed uploads all returned')
})
