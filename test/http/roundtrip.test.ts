import t from 'tap'
import { DTYPES } from '../../protocol/dtypes.js'
import { MODES } from '../../protocol/modes.js'
import { startServer } from '../helpers/server.js'
import { call, chunked, download, put, randomBytes, upload } from '../helpers/http.js'

t.test('every mode: JSON create is zero-filled, PUT then GET is byte-exact, raw upload is byte-exact', async (t) => {
  const { url, server } = await startServer(t)
  for (const mode of MODES) {
    const id = `json-${mode.name.replace(';', '_')}`
    const created = await call(url, 'POST', '/images', { width: 7, height: 5, mode: mode.name, id })
    t.equal(created.status, 201, `${mode.name} created`)
    const d = created.body
    const shape = mode.channels === 1 ? [5, 7] : [5, 7, mode.channels]
    const itemSize = Number(mode.typestr.slice(2))
    t.match(d, { id, mode: mode.name, width: 7, height: 5, channels: mode.channels, typestr: mode.typestr, shape, generation: 0, layout: 'block', copied: false, readonly: false })
    t.equal(d.byteLength, 35 * mode.channels * itemSize)
    t.same(d.__array_interface__, { version: 3, shape, typestr: mode.typestr, descr: [['', mode.typestr]], strides: null, data: null })
    // The response schema must not drop anything the store describes.
    t.same(d, server.store.describe(id))
    t.equal(created.headers.get('location'), `/images/${encodeURIComponent(id)}`)

    const zeros = await download(url, id)
    t.equal(zeros.status, 200)
    t.same(zeros.bytes, new Uint8Array(d.byteLength), `${mode.name} starts zero-filled`)

    const pixels = randomBytes(d.byteLength)
    const written = await put(url, id, pixels)
    t.equal(written.status, 200)
    t.equal(written.body.generation, 1, 'PUT bumps the generation')
    const back = await download(url, id)
    t.ok(Buffer.from(back.bytes).equals(pixels), `${mode.name} PUT/GET byte-exact`)
    t.equal(back.headers.get('x-pixelport-generation'), '1')
    t.equal(back.headers.get('x-pixelport-shape'), shape.join(','))
    t.equal(back.headers.get('x-pixelport-typestr'), mode.typestr)
    t.equal(back.headers.get('x-pixelport-mode'), mode.name)
    t.equal(back.headers.get('content-type'), 'application/octet-stream')
    t.equal(back.headers.get('accept-ranges'), 'bytes')

    const raw = await upload(url, { width: 7, height: 5, mode: mode.name, id: `raw-${id}` }, pixels)
    t.equal(raw.status, 201, `${mode.name} raw upload`)
    t.same(raw.body.shape, shape)
    const rawBack = await download(url, `raw-${id}`)
    t.ok(Buffer.from(rawBack.bytes).equals(pixels), `${mode.name} upload/GET byte-exact`)
  }
  t.equal(server.store.size, MODES.length * 2)
})

t.test('every dtype: raw upload with shape + typestr, and a chunked upload, are byte-exact', async (t) => {
  const { url, server } = await startServer(t)
  for (const dtype of DTYPES) {
    const shape = [6, 5, 3]
    const bytes = randomBytes(6 * 5 * 3 * dtype.itemSize)
    const id = `dt-${dtype.typestr.replace(/[<>|]/g, (c) => ({ '<': 'le', '>': 'be', '|': 'na' }[c]!))}`
    const res = await upload(url, { shape: shape.join(','), typestr: dtype.typestr, id }, bytes)
    t.equal(res.status, 201, `${dtype.typestr} created`)
    t.equal(res.body.typestr, dtype.typestr)
    t.same(res.body.__array_interface__.shape, shape)
    t.equal(res.body.byteLength, bytes.byteLength)
    const back = await download(url, id)
    t.ok(Buffer.from(back.bytes).equals(bytes), `${dtype.typestr} byte-exact`)
    t.equal(back.headers.get('x-pixelport-typestr'), dtype.typestr)

    // No Content-Length: the byte count is enforced as the chunks arrive, split at odd places.
    const cut = Math.floor(bytes.byteLength / 3) + 1
    const chunkedRes = await upload(url, { shape: shape.join(','), typestr: dtype.typestr, id: `${id}-chunked` },
      chunked(bytes.subarray(0, 1), bytes.subarray(1, cut), bytes.subarray(cut)))
    t.equal(chunkedRes.status, 201, `${dtype.typestr} chunked`)
    const chunkedBack = await download(url, `${id}-chunked`)
    t.ok(Buffer.from(chunkedBack.bytes).equals(bytes), `${dtype.typestr} chunked byte-exact`)

    // Zero-filled from JSON too, and a 2-D shape.
    const zero = await call(url, 'POST', '/images', { shape: [4, 3], typestr: dtype.typestr, id: `${id}-zero` })
    t.equal(zero.status, 201)
    t.same((await download(url, `${id}-zero`)).bytes, new Uint8Array(12 * dtype.itemSize))
  }
  t.equal(server.store.size, DTYPES.length * 3)
})

t.test('list, describe, delete', async (t) => {
  const { url } = await startServer(t)
  t.same((await call(url, 'GET', '/images')).body, { images: [], next: null })
  await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L', id: 'a' })
  await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'RGB', id: 'b' })
  const generated = await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L' })
  t.equal(generated.status, 201)
  t.match(generated.body.id, /^[A-Za-z0-9]/, 'an id is generated when none is given')
  const list = await call(url, 'GET', '/images')
  t.same(list.body.images.map((d: { id: string }) => d.id), ['a', 'b', generated.body.id])
  const one = await call(url, 'GET', '/images/b')
  t.same(one.body, list.body.images[1])
  const del = await call(url, 'DELETE', '/images/a')
  t.equal(del.status, 204)
  t.equal(del.body, null)
  t.equal((await call(url, 'GET', '/images/a')).status, 404)
  t.equal((await call(url, 'DELETE', '/images/a')).body.code, 'PXP_ERR_NOT_FOUND')
  t.same((await call(url, 'GET', '/images')).body.images.map((d: { id: string }) => d.id), ['b', generated.body.id])
  t.same((await call(url, 'GET', '/healthz')).body, { ok: true, images: 2 })
})

t.test('stats report memory, counts and snapshots', async (t) => {
  const { url } = await startServer(t, { capacity: 8 * 1024 * 1024, blockSize: 1024 * 1024 })
  const before = (await call(url, 'GET', '/stats')).body
  t.match(before, { capacity: 8 * 1024 * 1024, blockSize: 1024 * 1024, used: 0, images: 0, views: 0, snapshots: { snapshots: 0, bytes: 0 } })
  t.equal(before.free, before.capacity)
  t.type(before.largestFreeRun, 'number')
  await call(url, 'POST', '/images', { width: 100, height: 100, mode: 'RGBA', id: 'x' })
  await call(url, 'POST', '/images/x/views', { x: 0, y: 0, width: 10, height: 10, id: 'v' })
  await download(url, 'x')
  const after = (await call(url, 'GET', '/stats')).body
  t.match(after, { images: 1, views: 1, blocks: 1, snapshots: { snapshots: 1, bytes: 40000, copies: 1 } })
  t.ok(after.used >= 40000)
  t.equal(after.free, after.capacity - after.used)
})
