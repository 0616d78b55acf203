import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, upload } from '../helpers/http.js'

t.test('layout "lines": rows spread over blocks, downloaded as the contiguous copy', async (t) => {
  const { url, server } = await startServer(t)
  const W = 33
  const H = 17
  const bytes = randomBytes(W * H * 3)
  const res = await upload(url, { width: W, height: H, mode: 'RGB', id: 'rows', layout: 'lines' }, bytes)
  t.equal(res.status, 201)
  const d = res.body
  t.match(d, { layout: 'lines', copied: true, readonly: true, location: { kind: 'lines', rowBytes: W * 3 } })
  t.same(d, server.store.describe('rows'), 'the response schema drops nothing the store describes')
  t.equal(d.__array_interface__.strides, null, 'the bytes handed out are C-contiguous')
  t.equal(d.location.segments.reduce((n: number, s: { rows: number }) => n + s.rows, 0), H, 'segments cover every row')
  const back = await download(url, 'rows')
  t.ok(Buffer.from(back.bytes).equals(bytes), 'download is the contiguous copy, byte-exact')

  // The copy is read-only, the image is not: a PUT goes through the store into every row.
  const next = randomBytes(W * H * 3)
  const written = await put(url, 'rows', next)
  t.equal(written.status, 200)
  t.equal(written.body.generation, 1)
  t.ok(Buffer.from((await download(url, 'rows')).bytes).equals(next))

  // Zero-filled from JSON as well.
  const zero = await call(url, 'POST', '/images', { shape: [5, 4], typestr: '<u2', id: 'rows0', layout: 'lines' })
  t.equal(zero.status, 201)
  t.equal(zero.body.layout, 'lines')
  t.same((await download(url, 'rows0')).bytes, new Uint8Array(40))
})

t.test('when no contiguous run is left, a block image falls back to lines instead of failing', async (t) => {
  const blockSize = 64 * 1024
  const { url, server } = await startServer(t, { blockSize, capacity: 4 * blockSize })
  // Fill the arena with 16 KiB images, then free every other one: plenty free, no run over 16 KiB.
  const ids: string[] = []
  for (let i = 0; ; i++) {
    const res = await call(url, 'POST', '/images', { width: 128, height: 128, mode: 'L', id: `f${i}` })
    if (res.status !== 201) {
      t.equal(res.status, 507)
      t.equal(res.body.code, 'PXP_ERR_CAPACITY')
      break
    }
    ids.push(res.body.id)
  }
  for (let i = 0; i < ids.length; i += 2) t.equal((await call(url, 'DELETE', `/images/${ids[i]}`)).status, 204)
  const stats = server.store.stats()
  t.ok(stats.largestFreeRun < 3 * 128 * 128, 'memory is fragmented')
  const bytes = randomBytes(3 * 128 * 128)
  const res = await upload(url, { width: 128, height: 128, mode: 'RGB', id: 'big' }, bytes)
  t.equal(res.status, 201)
  t.match(res.body, { layout: 'lines', copied: true, readonly: true })
  t.ok(Buffer.from((await download(url, 'big')).bytes).equals(bytes))
})
