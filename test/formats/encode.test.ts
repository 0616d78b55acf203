/**
 * GET /images/:id.png (.jpeg/.jpg, .webp, .tiff/.tif): pictures of every kind of image, decoded again with
 * sharp and compared with the pixels the image holds, and the conversions docs/http.md promises.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, errorOf, fetchBytes, picturePath, postPicture, put, upload } from '../helpers/http.js'
import { decodeWithSharp, pattern, u16le } from '../helpers/picture-files.js'

const W = 11
const H = 6

t.test('8-bit images: PNG, TIFF and lossless WebP exact, JPEG close; alpha kept where the format has it', async (t) => {
  const { url } = await startServer(t)
  for (const [mode, channels] of [['L', 1], ['LA', 2], ['RGB', 3], ['RGBA', 4]] as const) {
    const pixels = pattern(W * H * channels, channels + 20)
    t.equal((await upload(url, { width: W, height: H, mode, id: `cam/${mode}` }, pixels)).status, 201)
    for (const extension of ['png', 'tiff', 'tif']) {
      const res = await fetchBytes(url, picturePath(`cam/${mode}`, extension))
      t.equal(res.status, 200)
      t.equal(res.headers.get('content-type'), extension === 'png' ? 'image/png' : 'image/tiff')
      const decoded = await decodeWithSharp(res.bytes)
      t.match(decoded, { width: W, height: H, channels, depth: 'uchar' }, `${mode} as ${extension}`)
      t.ok(decoded.data.equals(pixels), `${mode} as ${extension}: exact`)
    }
    const webp = await decodeWithSharp((await fetchBytes(url, picturePath(`cam/${mode}`, 'webp', '?lossless=true'))).bytes)
    // WebP has no grey: grey comes back in R, G and B.
    const expanded = channels >= 3 ? pixels : Uint8Array.from({ length: W * H * (channels + 2) }, (_, i) => {
      const [p, c] = [Math.floor(i / (channels + 2)), i % (channels + 2)]
      return c < 3 ? pixels[p * channels] : pixels[p * channels + 1]
    })
    t.ok(webp.data.equals(expanded), `${mode} as lossless WebP: exact`)

    const jpeg = await fetchBytes(url, picturePath(`cam/${mode}`, 'jpg'))
    t.equal(jpeg.headers.get('content-type'), 'image/jpeg')
    const decoded = await decodeWithSharp(jpeg.bytes)
    t.equal(decoded.channels, channels >= 3 ? 3 : 1, `${mode} as JPEG: alpha dropped`)
  }
})

t.test('a picture uploaded again is the same image: PNG round trip through the server', async (t) => {
  const { url } = await startServer(t)
  for (const [mode, channels] of [['L', 1], ['LA', 2], ['RGB', 3], ['RGBA', 4]] as const) {
    const pixels = pattern(W * H * channels, channels)
    await upload(url, { width: W, height: H, mode, id: mode }, pixels)
    const png = await fetchBytes(url, picturePath(mode, 'png'))
    const again = await postPicture(url, png.bytes, 'image/png', { id: `${mode}-again` })
    t.match(again.body, { mode, shape: channels === 1 ? [H, W] : [H, W, channels] })
    t.ok((await fetchBytes(url, `/images/${mode}-again/data`)).bytes.equals(pixels), `${mode} survives PNG and back`)
  }
})

t.test('16-bit: PNG and TIFF keep 16 bits (I;16, I;16B, colour); JPEG and WebP get v/257', async (t) => {
  const { url } = await startServer(t)
  const values = Array.from({ length: W * H }, (_, i) => (i * 1237 + 3) & 0xffff)
  await upload(url, { width: W, height: H, mode: 'I;16', id: 'depth' }, u16le(values))
  const bigEndian = new Uint8Array(W * H * 2)
  values.forEach((v, i) => { bigEndian[2 * i] = v >> 8; bigEndian[2 * i + 1] = v & 0xff })
  await upload(url, { width: W, height: H, mode: 'I;16B', id: 'depth-be' }, bigEndian)
  for (const id of ['depth', 'depth-be']) {
    for (const extension of ['png', 'tiff']) {
      const decoded = await decodeWithSharp((await fetchBytes(url, picturePath(id, extension))).bytes)
      t.match(decoded, { channels: 1, depth: 'ushort' }, `${id} as ${extension} is 16-bit grey`)
      t.ok(decoded.data.equals(u16le(values)), `${id} as ${extension}: exact`)
    }
    const jpeg = await decodeWithSharp((await fetchBytes(url, picturePath(id, 'jpeg', '?quality=100'))).bytes)
    const expected = values.map((v) => Math.round(v / 257))
    const worst = Array.from(jpeg.data).reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0)
    t.ok(worst <= 8, `${id} as JPEG scaled to 8 bits (worst ${worst})`)
  }
  const webp = await decodeWithSharp((await fetchBytes(url, picturePath('depth', 'webp', '?lossless=true'))).bytes)
  t.same(Array.from(webp.data.filter((_, i) => i % 3 === 0)), values.map((v) => Math.round(v / 257)), 'lossless WebP: exactly round(v / 257)')

  const rgba16 = Array.from({ length: W * H * 4 }, (_, i) => (i * 977 + 5) & 0xffff)
  await upload(url, { shape: `${H},${W},4`, typestr: '<u2', id: 'rgba16' }, u16le(rgba16))
  const decoded = await decodeWithSharp((await fetchBytes(url, picturePath('rgba16', 'png'))).bytes)
  t.match(decoded, { channels: 4, depth: 'ushort' })
  t.ok(decoded.data.equals(u16le(rgba16)), '16-bit RGBA PNG exact')
})

t.test('F, I and other dtypes are scaled min..max to 8 bits; the range is in X-Pixelport-Value-Range', async (t) => {
  const { url } = await startServer(t)
  const floats = Float32Array.from({ length: W * H }, (_, i) => i * 0.5 - 10)
  floats[3] = NaN
  floats[4] = Infinity
  floats[5] = -Infinity
  await upload(url, { width: W, height: H, mode: 'F', id: 'f' }, new Uint8Array(floats.buffer))
  const res = await fetchBytes(url, picturePath('f', 'png'))
  const [min, max] = [-10, (W * H - 1) * 0.5 - 10]
  t.equal(res.headers.get('x-pixelport-value-range'), `${min},${max}`)
  const decoded = await decodeWithSharp(res.bytes)
  t.match(decoded, { channels: 1, depth: 'uchar' })
  const expected = Array.from(floats, (v) => Number.isNaN(v) || v === -Infinity ? 0 : v === Infinity ? 255 : Math.round((v - min) * 255 / (max - min)))
  t.same(Array.from(decoded.data), expected, 'linear scale; NaN and -Inf 0, +Inf 255')
  t.equal(decoded.data[0], 0)
  t.equal(decoded.data[W * H - 1], 255)

  const ints = Int32Array.from({ length: W * H }, (_, i) => (i - 30) * 100_000)
  await upload(url, { width: W, height: H, mode: 'I', id: 'i' }, new Uint8Array(ints.buffer))
  const ires = await fetchBytes(url, picturePath('i', 'tiff'))
  t.equal(ires.headers.get('x-pixelport-value-range'), `${-3_000_000},${(W * H - 31) * 100_000}`)
  t.equal((await decodeWithSharp(ires.bytes)).depth, 'uchar', 'TIFF of I is 8-bit too')

  // Constant images do not divide by zero.
  await upload(url, { width: W, height: H, mode: 'F', id: 'flat' }, new Uint8Array(new Float32Array(W * H).fill(3.25).buffer))
  const flat = await fetchBytes(url, picturePath('flat', 'png'))
  t.equal(flat.headers.get('x-pixelport-value-range'), '3.25,3.25')
  t.ok((await decodeWithSharp(flat.bytes)).data.every((v) => v === 0))

  // Multi-channel doubles, big-endian: one range for all channels, RGB out.
  const doubles = Float64Array.from({ length: W * H * 3 }, (_, i) => i)
  const be = new Uint8Array(doubles.byteLength)
  const view = new DataView(be.buffer)
  doubles.forEach((v, i) => view.setFloat64(i * 8, v, false))
  await upload(url, { shape: `${H},${W},3`, typestr: '>f8', id: 'be-doubles' }, be)
  const rgb = await fetchBytes(url, picturePath('be-doubles', 'png'))
  t.equal(rgb.headers.get('x-pixelport-value-range'), `0,${W * H * 3 - 1}`)
  const rgbDecoded = await decodeWithSharp(rgb.bytes)
  t.equal(rgbDecoded.channels, 3)
  t.same(Array.from(rgbDecoded.data), Array.from(doubles, (v) => Math.round(v * 255 / (W * H * 3 - 1))))
})

t.test('modes: 1 as 0/255, P and PA as grey, RGBX without X, CMYK YCbCr HSV LAB converted to RGB', async (t) => {
  const { url } = await startServer(t)
  const bits = Uint8Array.from({ length: W * H }, (_, i) => i % 3 === 0 ? 1 : 0)
  await upload(url, { width: W, height: H, mode: '1', id: 'bits' }, bits)
  t.same(Array.from((await decodeWithSharp((await fetchBytes(url, picturePath('bits', 'png'))).bytes)).data), Array.from(bits, (b) => b * 255))

  const indices = pattern(W * H, 5)
  await upload(url, { width: W, height: H, mode: 'P', id: 'p' }, indices)
  t.ok((await decodeWithSharp((await fetchBytes(url, picturePath('p', 'png'))).bytes)).data.equals(indices), 'P: the indices as grey')
  const pa = pattern(W * H * 2, 6)
  await upload(url, { width: W, height: H, mode: 'PA', id: 'pa' }, pa)
  const paDecoded = await decodeWithSharp((await fetchBytes(url, picturePath('pa', 'png'))).bytes)
  t.equal(paDecoded.channels, 2, 'PA: grey + alpha')
  t.ok(paDecoded.data.equals(pa), 'PA: indices and alpha as they are')

  const rgbx = pattern(W * H * 4, 7)
  await upload(url, { width: W, height: H, mode: 'RGBX', id: 'rgbx' }, rgbx)
  const rgbxDecoded = await decodeWithSharp((await fetchBytes(url, picturePath('rgbx', 'png'))).bytes)
  t.equal(rgbxDecoded.channels, 3)
  t.ok(rgbxDecoded.data.equals(Buffer.from(rgbx.filter((_, i) => i % 4 !== 3))))

  // One pixel each, with known answers.
  let n = 0
  const one = async (mode: string, pixel: number[]): Promise<number[]> => {
    const id = `one-${n++}`
    t.equal((await upload(url, { width: 1, height: 1, mode, id }, Uint8Array.from(pixel))).status, 201)
    return Array.from((await decodeWithSharp((await fetchBytes(url, picturePath(id, 'png'))).bytes)).data)
  }
  t.same(await one('CMYK', [0, 255, 255, 0]), [255, 0, 0], 'CMYK: no cyan, full magenta and yellow is red')
  t.same(await one('CMYK', [0, 0, 0, 255]), [0, 0, 0], 'CMYK: full black')
  t.same(await one('YCbCr', [128, 128, 128]), [128, 128, 128], 'YCbCr: neutral grey')
  t.same(await one('YCbCr', [76, 85, 255]), [254, 0, 0], 'YCbCr: red (JFIF)')
  t.same(await one('HSV', [0, 255, 255]), [255, 0, 0], 'HSV: red')
  t.same(await one('HSV', [85, 255, 255]), [0, 255, 0], 'HSV: green (120°)')
  t.same(await one('LAB', [255, 0, 0]), [255, 255, 255], 'LAB: white')
  t.same(await one('LAB', [0, 0, 0]), [0, 0, 0], 'LAB: black')
  const red = await one('LAB', [137, 80, 67])
  t.ok(red[0] > 230 && red[1] < 40 && red[2] < 40, `LAB: L*54 a*80 b*67 is red (${red.join(',')})`)
})

t.test('views encode their rectangle; line-based images encode like any other', async (t) => {
  const { url } = await startServer(t)
  const [w, h] = [40, 30]
  const pixels = pattern(w * h * 3, 8)
  await upload(url, { width: w, height: h, mode: 'RGB', id: 'base' }, pixels)
  const view = await call(url, 'POST', '/images/base/views', { x: 5, y: 7, width: 12, height: 9, id: 'base/roi' })
  t.equal(view.status, 201)
  const decoded = await decodeWithSharp((await fetchBytes(url, picturePath('base/roi', 'png'))).bytes)
  t.match(decoded, { width: 12, height: 9, channels: 3 })
  const roi = Buffer.alloc(12 * 9 * 3)
  for (let y = 0; y < 9; y++) roi.set(pixels.subarray(((7 + y) * w + 5) * 3, ((7 + y) * w + 17) * 3), y * 12 * 3)
  t.ok(decoded.data.equals(roi), 'the view picture is the rectangle')

  await upload(url, { width: w, height: h, mode: 'RGB', id: 'lines', layout: 'lines' }, pixels)
  const lines = await decodeWithSharp((await fetchBytes(url, picturePath('lines', 'png'))).bytes)
  t.ok(lines.data.equals(pixels), 'line-based image exact')
})

t.test('shapes and sizes a picture cannot have are 406 PXP_ERR_NOT_ENCODABLE', async (t) => {
  const { url } = await startServer(t)
  await call(url, 'POST', '/images', { shape: [20], typestr: '|u1', id: 'flat' })
  await call(url, 'POST', '/images', { shape: [4, 5, 5], typestr: '|u1', id: 'five' })
  await call(url, 'POST', '/images', { shape: [4, 5, 2, 2], typestr: '|u1', id: 'deep' })
  await call(url, 'POST', '/images', { width: 17000, height: 1, mode: 'L', id: 'wide' })
  for (const [id, extension] of [['flat', 'png'], ['five', 'png'], ['deep', 'tiff'], ['wide', 'webp']]) {
    const res = await fetchBytes(url, picturePath(id, extension))
    t.equal(res.status, 406, `${id}.${extension}`)
    t.match(errorOf(res), { code: 'PXP_ERR_NOT_ENCODABLE', message: new RegExp(`^Image "${id}" cannot be encoded as`) })
  }
  t.equal((await fetchBytes(url, picturePath('wide', 'png'))).status, 200, 'PNG takes 17000 pixels wide')
})

t.test('headers, conditional requests, encoder options, HEAD, unknown ids', async (t) => {
  const { url } = await startServer(t)
  const pixels = pattern(64 * 48 * 3, 12)
  await upload(url, { width: 64, height: 48, mode: 'RGB', id: 'cam1/frame' }, pixels)
  let res = await fetchBytes(url, '/images/cam1%2Fframe.png')
  t.equal(res.status, 200)
  t.equal(res.headers.get('etag'), '"0"')
  t.equal(res.headers.get('x-pixelport-generation'), '0')
  t.equal(res.headers.get('cache-control'), 'no-cache')
  t.equal(res.headers.get('content-disposition'), 'inline; filename="frame.png"')
  t.equal(res.headers.get('content-length'), String(res.bytes.byteLength))
  t.equal(res.headers.get('x-pixelport-value-range'), null, 'no range for 8-bit images')

  const notModified = await fetchBytes(url, '/images/cam1%2Fframe.png', { 'if-none-match': '"0"' })
  t.equal(notModified.status, 304)
  t.equal(notModified.bytes.byteLength, 0)
  t.equal(notModified.headers.get('etag'), '"0"')

  await put(url, 'cam1/frame', pattern(64 * 48 * 3, 13))
  res = await fetchBytes(url, '/images/cam1%2Fframe.png', { 'if-none-match': '"0"' })
  t.equal(res.status, 200, 'a new generation is a new picture')
  t.equal(res.headers.get('etag'), '"1"')
  t.ok((await decodeWithSharp(res.bytes)).data.equals(pattern(64 * 48 * 3, 13)))

  const small = await fetchBytes(url, '/images/cam1%2Fframe.jpeg?quality=5')
  const large = await fetchBytes(url, '/images/cam1%2Fframe.jpeg?quality=100')
  t.ok(small.bytes.byteLength < large.bytes.byteLength / 2, `quality 5 (${small.bytes.byteLength} B) much smaller than 100 (${large.bytes.byteLength} B)`)
  const lossy = await fetchBytes(url, '/images/cam1%2Fframe.webp')
  const lossless = await fetchBytes(url, '/images/cam1%2Fframe.webp?lossless=true')
  t.not(lossy.bytes.equals(lossless.bytes), true)
  for (const query of ['.jpeg?quality=0', '.jpeg?quality=101', '.png?quality=50', '.png?lossless=true', '.tiff?colour=1', '.webp?lossless=maybe']) {
    res = await fetchBytes(url, `/images/cam1%2Fframe${query}`)
    t.equal(res.status, 400, query)
    t.equal(errorOf(res).code, 'PXP_ERR_VALIDATION')
  }

  const head = await fetch(`${url}/images/cam1%2Fframe.png`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-type'), 'image/png')
  t.equal((await head.arrayBuffer()).byteLength, 0)

  res = await fetchBytes(url, picturePath('nope', 'png'))
  t.equal(res.status, 404)
  t.equal(errorOf(res).code, 'PXP_ERR_NOT_FOUND')
  res = await fetchBytes(url, '/images/.png')
  t.equal(errorOf(res).code, 'PXP_ERR_BAD_ID')
  res = await fetchBytes(url, '/images/a%2F..%2Fb.png')
  t.equal(errorOf(res).code, 'PXP_ERR_BAD_ID')
})

t.test('router: suffix routes beside /images/:id, ids that end in .png themselves', async (t) => {
  const { url, server } = await startServer(t)
  await upload(url, { width: 4, height: 4, mode: 'L', id: 'shot' }, pattern(16, 1))
  await upload(url, { width: 5, height: 5, mode: 'L', id: 'photo.png' }, pattern(25, 2))

  t.equal((await call(url, 'GET', '/images/shot')).body.id, 'shot', '/images/:id still describes')
  t.equal((await fetchBytes(url, '/images/shot.png')).headers.get('content-type'), 'image/png')
  t.equal((await fetchBytes(url, '/images/shot.PNG')).status, 404, 'suffixes are lower case; shot.PNG is an id')

  // Only "photo.png" exists: its path describes it, as /images/:id would.
  const described = await call(url, 'GET', '/images/photo.png')
  t.equal(described.status, 200)
  t.match(described.body, { id: 'photo.png', width: 5 })
  t.equal(described.headers.get('etag'), '"0"')
  t.equal((await fetchBytes(url, '/images/photo.png', { 'if-none-match': '"0"' })).status, 304)
  const photoPng = await decodeWithSharp((await fetchBytes(url, '/images/photo.png.png')).bytes)
  t.equal(photoPng.width, 5, 'photo.png.png is the picture of photo.png')
  t.equal((await fetchBytes(url, '/images/photo.png/data')).bytes.byteLength, 25, '/data of photo.png')

  // Once "photo" exists too, /images/photo.png is its picture.
  await upload(url, { width: 6, height: 6, mode: 'L', id: 'photo' }, pattern(36, 3))
  t.equal((await decodeWithSharp((await fetchBytes(url, '/images/photo.png')).bytes)).width, 6)
  t.equal((await call(url, 'DELETE', '/images/photo.png')).status, 204, 'DELETE has no suffix route')
  t.notOk(server.store.has('photo.png'))
  t.ok(server.store.has('photo'))
})

t.test('every picture is of one committed generation, while a writer keeps committing', async (t) => {
  const { url, server } = await startServer(t)
  const [w, h] = [96, 64]
  const size = w * h * 3
  await upload(url, { width: w, height: h, mode: 'RGB', id: 'live' }, new Uint8Array(size))
  // Generation g is uniformly g % 251: a torn frame would mix two values.
  let writing = true
  const writer = (async () => {
    let g = 0
    while (writing) {
      g++
      await server.store.write('live', new Uint8Array(size).fill(g % 251))
      await new Promise((resolve) => setImmediate(resolve))
    }
    return g
  })()
  const seen = new Set<number>()
  for (let round = 0; round < 8; round++) {
    const responses = await Promise.all(['png', 'tiff', 'png', 'webp?lossless=true'].map((ext) => fetchBytes(url, `/images/live.${ext}`)))
    for (const res of responses) {
      t.equal(res.status, 200)
      const generation = Number(res.headers.get('x-pixelport-generation'))
      t.equal(res.headers.get('etag'), `"${generation}"`)
      const { data } = await decodeWithSharp(res.bytes)
      const value = generation % 251
      if (!data.every((v) => v === value)) t.fail(`generation ${generation}: not uniformly ${value}`)
      seen.add(generation)
    }
  }
  writing = false
  const commits = await writer
  t.ok(commits > 1, `${commits} commits during the test`)
  t.ok(seen.size > 1, `pictures of ${seen.size} different generations`)
  t.equal(server.snapshots.stats().snapshots <= 2, true, 'snapshots released after encoding')
})
