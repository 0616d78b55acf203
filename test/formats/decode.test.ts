/**
 * POST /images with PNG, JPEG, WebP and TIFF bodies: the right mode, shape and dtype, and the pixels the
 * file holds (exactly, for lossless formats), read back as raw bytes.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { chunked, download, postPicture } from '../helpers/http.js'
import { buildPng, buildTiff, encodeWithSharp, pattern, rowsOf, u16le } from '../helpers/picture-files.js'

const W = 13
const H = 7

t.test('8-bit PNG: L, LA, RGB, RGBA, byte-exact', async (t) => {
  const { url } = await startServer(t)
  const cases = [[1, 'L'], [2, 'LA'], [3, 'RGB'], [4, 'RGBA']] as const
  for (const [channels, mode] of cases) {
    const pixels = pattern(W * H * channels, channels)
    const png = await encodeWithSharp(pixels, W, H, channels, 'png')
    const res = await postPicture(url, png, 'image/png', { id: `png/${mode}` })
    t.equal(res.status, 201, `${mode} created`)
    t.match(res.body, { id: `png/${mode}`, mode, width: W, height: H, channels, typestr: '|u1', shape: channels === 1 ? [H, W] : [H, W, channels] })
    t.equal(res.headers.get('location'), `/images/png%2F${mode}`)
    const back = await download(url, `png/${mode}`)
    t.ok(Buffer.from(back.bytes).equals(pixels), `${mode} pixels byte-exact`)
  }
})

t.test('16-bit PNG and TIFF stay 16-bit: I;16 for grey, <u2 shapes for grey+alpha and colour', async (t) => {
  const { url } = await startServer(t)
  for (const format of ['png', 'tiff'] as const) {
    for (const channels of [1, 2, 3, 4] as const) {
      const values = Array.from({ length: W * H * channels }, (_, i) => (i * 4099 + 7 + channels) & 0xffff)
      const pixels = u16le(values)
      const file = await encodeWithSharp(pixels, W, H, channels, format, format === 'tiff' ? { compression: 'lzw' } : {}, true)
      const id = `${format}16-${channels}`
      const res = await postPicture(url, file, `image/${format}`, { id })
      t.equal(res.status, 201, `${id} created`)
      t.equal(res.body.typestr, '<u2', `${id} keeps 16 bits`)
      if (channels === 1) t.match(res.body, { mode: 'I;16', shape: [H, W] })
      else t.match(res.body, { mode: null, shape: [H, W, channels] })
      const back = await download(url, id)
      t.ok(Buffer.from(back.bytes).equals(pixels), `${id} samples exact`)
      // The values really are wide: some exceed 8 bits.
      t.ok(values.some((v) => v > 255))
    }
  }
})

t.test('palette PNGs expand to RGB, with tRNS to RGBA; 1- and 4-bit grey become L', async (t) => {
  const { url } = await startServer(t)
  const palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
  const indices = Uint8Array.from({ length: W * H }, (_, i) => i % 4)
  const plain = buildPng({ width: W, height: H, bitDepth: 8, colorType: 3, palette, rows: rowsOf(indices, W) })
  let res = await postPicture(url, plain, 'image/png', { id: 'pal' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'RGB', shape: [H, W, 3], typestr: '|u1' })
  const expected = Uint8Array.from(Array.from(indices, (k) => palette.slice(k * 3, k * 3 + 3)).flat())
  t.same((await download(url, 'pal')).bytes, expected, 'palette entries looked up')

  const withAlpha = buildPng({ width: W, height: H, bitDepth: 8, colorType: 3, palette, transparency: [0, 128], rows: rowsOf(indices, W) })
  res = await postPicture(url, withAlpha, 'image/png', { id: 'pal-trns' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'RGBA', shape: [H, W, 4] })
  const alpha = [0, 128, 255, 255]
  const expectedRgba = Uint8Array.from(Array.from(indices, (k) => [...palette.slice(k * 3, k * 3 + 3), alpha[k]]).flat())
  t.same((await download(url, 'pal-trns')).bytes, expectedRgba, 'tRNS becomes the alpha channel')

  // 1-bit: 8 pixels per byte, most significant first; 0 → 0, 1 → 255.
  const bits = Uint8Array.from({ length: H * 2 }, (_, i) => (i * 37) & 0xff)
  const oneBit = buildPng({ width: W, height: H, bitDepth: 1, colorType: 0, rows: rowsOf(bits, 2) })
  res = await postPicture(url, oneBit, 'image/png', { id: 'bits' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'L', shape: [H, W] })
  const expectedBits = Uint8Array.from({ length: W * H }, (_, i) => {
    const [y, x] = [Math.floor(i / W), i % W]
    return (bits[y * 2 + (x >> 3)] >> (7 - (x & 7))) & 1 ? 255 : 0
  })
  t.same((await download(url, 'bits')).bytes, expectedBits, '1-bit pixels as 0/255')

  const nibbles = Uint8Array.from({ length: H * 7 }, (_, i) => (i * 29) & 0xff)
  const fourBit = buildPng({ width: W, height: H, bitDepth: 4, colorType: 0, rows: rowsOf(nibbles, 7) })
  res = await postPicture(url, fourBit, 'image/png', { id: 'nibbles' })
  t.equal(res.status, 201)
  const expectedNibbles = Uint8Array.from({ length: W * H }, (_, i) => {
    const [y, x] = [Math.floor(i / W), i % W]
    return ((nibbles[y * 7 + (x >> 1)] >> (x & 1 ? 0 : 4)) & 15) * 17
  })
  t.same((await download(url, 'nibbles')).bytes, expectedNibbles, '4-bit grey scaled to 8 bits')
})

t.test('JPEG decodes approximately; CMYK JPEG keeps mode CMYK', async (t) => {
  const { url } = await startServer(t)
  // A smooth image: JPEG reproduces it closely.
  const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => 40 + ((i % 3) * 50) + Math.floor(i / (W * 3)) * 4)
  const jpeg = await encodeWithSharp(rgb, W, H, 3, 'jpeg', { quality: 95 })
  let res = await postPicture(url, jpeg, 'image/jpeg', { id: 'photo' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'RGB', shape: [H, W, 3], typestr: '|u1' })
  const back = (await download(url, 'photo')).bytes
  const worst = back.reduce((m, v, i) => Math.max(m, Math.abs(v - rgb[i])), 0)
  t.ok(worst <= 12, `within 12 levels of the original (worst ${worst})`)

  const grey = await encodeWithSharp(Uint8Array.from({ length: W * H }, (_, i) => 100 + (i % W)), W, H, 1, 'jpeg', { quality: 95 })
  res = await postPicture(url, grey, 'image/jpeg', { id: 'grey-photo' })
  t.match(res.body, { mode: 'L', shape: [H, W] })

  const { default: sharp } = await import('sharp')
  const cmyk = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer()
  res = await postPicture(url, cmyk, 'image/jpeg', { id: 'print' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'CMYK', shape: [H, W, 4], typestr: '|u1' })
})

t.test('WebP: lossless RGB and RGBA exact; grey WebP is RGB (the format has no grey)', async (t) => {
  const { url } = await startServer(t)
  for (const channels of [3, 4] as const) {
    const pixels = pattern(W * H * channels, 10 + channels)
    const webp = await encodeWithSharp(pixels, W, H, channels, 'webp', { lossless: true, exact: true })
    const res = await postPicture(url, webp, 'image/webp', { id: `webp${channels}` })
    t.equal(res.status, 201)
    t.match(res.body, { mode: channels === 3 ? 'RGB' : 'RGBA' })
    t.ok(Buffer.from((await download(url, `webp${channels}`)).bytes).equals(pixels), `WebP ${channels} channels exact`)
  }
  const grey = pattern(W * H, 3)
  const webp = await encodeWithSharp(grey, W, H, 1, 'webp', { lossless: true })
  const res = await postPicture(url, webp, 'image/webp', { id: 'webp-grey' })
  t.match(res.body, { mode: 'RGB' })
  const back = (await download(url, 'webp-grey')).bytes
  t.same(back.filter((_, i) => i % 3 === 0), grey, 'grey replicated into R, G and B')
})

t.test('TIFF: 8-bit exact, float32 becomes F, int32 becomes I, 16-bit signed keeps its dtype', async (t) => {
  const { url } = await startServer(t)
  const rgb = pattern(W * H * 3, 7)
  let res = await postPicture(url, await encodeWithSharp(rgb, W, H, 3, 'tiff', { compression: 'lzw' }), 'image/tiff', { id: 'tif8' })
  t.match(res.body, { mode: 'RGB' })
  t.ok(Buffer.from((await download(url, 'tif8')).bytes).equals(rgb))

  const floats = Float32Array.from({ length: W * H }, (_, i) => (i - 40) / 7)
  res = await postPicture(url, buildTiff({ width: W, height: H, data: new Uint8Array(floats.buffer), bitsPerSample: 32, sampleFormat: 3 }), 'image/tiff', { id: 'float' })
  t.equal(res.status, 201)
  t.match(res.body, { mode: 'F', typestr: '<f4', shape: [H, W] })
  t.same(new Float32Array((await download(url, 'float')).bytes.buffer), floats, 'float samples exact')

  const ints = Int32Array.from({ length: W * H }, (_, i) => (i - 50) * 1_000_003)
  res = await postPicture(url, buildTiff({ width: W, height: H, data: new Uint8Array(ints.buffer), bitsPerSample: 32, sampleFormat: 2 }), 'image/tiff', { id: 'int' })
  t.match(res.body, { mode: 'I', typestr: '<i4' })
  t.same(new Int32Array((await download(url, 'int')).bytes.buffer), ints, 'int32 samples exact')

  const shorts = Int16Array.from({ length: W * H }, (_, i) => (i - 45) * 700)
  res = await postPicture(url, buildTiff({ width: W, height: H, data: new Uint8Array(shorts.buffer), bitsPerSample: 16, sampleFormat: 2 }), 'image/tiff', { id: 'short' })
  t.match(res.body, { mode: null, typestr: '<i2', shape: [H, W] })
  t.same(new Int16Array((await download(url, 'short')).bytes.buffer), shorts, 'int16 samples exact')
})

t.test('create options apply: generated id, layout lines, readonly, frames; chunked bodies; content sniffed', async (t) => {
  const { url, server } = await startServer(t)
  const pixels = pattern(W * H * 3, 4)
  const png = await encodeWithSharp(pixels, W, H, 3, 'png')
  let res = await postPicture(url, png, 'image/png')
  t.equal(res.status, 201)
  t.match(res.body.id, /^img-/, 'id generated when absent')

  res = await postPicture(url, png, 'image/png', { id: 'lines', layout: 'lines', readonly: true })
  t.match(res.body, { layout: 'lines', readonly: true })
  t.ok(Buffer.from((await download(url, 'lines')).bytes).equals(pixels))

  res = await postPicture(url, png, 'image/png', { id: 'framed', frames: 3 })
  t.equal(res.status, 201)
  t.equal(res.body.location.frames, 3)
  t.ok(Buffer.from((await download(url, 'framed')).bytes).equals(pixels), 'frame-buffered image holds the picture')

  // No Content-Length: collected as it arrives.
  res = await postPicture(url, chunked(png.subarray(0, 10), png.subarray(10, 50), png.subarray(50)), 'image/png', { id: 'chunked' })
  t.equal(res.status, 201)
  t.ok(Buffer.from((await download(url, 'chunked')).bytes).equals(pixels))

  // The bytes decide, not the label: a PNG sent as image/jpeg is a PNG. Parameters and case are ignored.
  res = await postPicture(url, png, 'IMAGE/JPEG; charset=binary', { id: 'mislabelled' })
  t.equal(res.status, 201)
  t.ok(Buffer.from((await download(url, 'mislabelled')).bytes).equals(pixels))
  t.equal(server.store.size, 5)
})

t.test('limits that come from the header are fine up to the limit: an image of exactly maxImageBytes', async (t) => {
  const { url } = await startServer(t, { maxImageBytes: W * H * 4 })
  const pixels = pattern(W * H * 4, 9)
  const res = await postPicture(url, await encodeWithSharp(pixels, W, H, 4, 'png'), 'image/png', { id: 'full' })
  t.equal(res.status, 201)
  t.equal(res.body.byteLength, W * H * 4)
})
