import t from 'tap'
import { parseRange } from '../../server/http/range.js'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, upload } from '../helpers/http.js'

t.test('ETag is the generation; If-None-Match answers 304 on the descriptor and the data', async (t) => {
  const { url, server } = await startServer(t)
  const bytes = randomBytes(64 * 48)
  await upload(url, { width: 64, height: 48, mode: 'L', id: 'cam/1' }, bytes)
  const d = await call(url, 'GET', '/images/cam%2F1')
  t.equal(d.headers.get('etag'), '"0"')
  const data = await download(url, 'cam/1')
  t.equal(data.headers.get('etag'), '"0"')

  for (const tag of ['"0"', 'W/"0"', '"7", "0"', '*']) {
    const same = await call(url, 'GET', '/images/cam%2F1', undefined, { 'if-none-match': tag })
    t.equal(same.status, 304, `descriptor If-None-Match ${tag}`)
    t.equal(same.body, null)
    const sameData = await download(url, 'cam/1', { 'if-none-match': tag })
    t.equal(sameData.status, 304, `data If-None-Match ${tag}`)
    t.equal(sameData.bytes.byteLength, 0)
    t.equal(sameData.headers.get('etag'), '"0"')
  }
  const copiesBefore = server.snapshots.stats().copies
  await download(url, 'cam/1', { 'if-none-match': '"0"' })
  t.equal(server.snapshots.stats().copies, copiesBefore, 'a 304 copies nothing')

  const next = randomBytes(64 * 48)
  const written = await put(url, 'cam/1', next)
  t.equal(written.headers.get('etag'), '"1"', 'PUT answers with the new ETag')
  t.equal(written.body.generation, 1)
  const changed = await download(url, 'cam/1', { 'if-none-match': '"0"' })
  t.equal(changed.status, 200, 'a stale tag gets the new bytes')
  t.equal(changed.headers.get('etag'), '"1"')
  t.equal(changed.headers.get('x-pixelport-generation'), '1')
  t.ok(Buffer.from(changed.bytes).equals(next))
  t.equal((await call(url, 'GET', '/images/cam%2F1', undefined, { 'if-none-match': '"0"' })).status, 200)
})

t.test('Range: one byte range is 206, unsatisfiable is 416, anything else is the whole body', async (t) => {
  const { url, server } = await startServer(t)
  const size = 100 * 10 * 3
  const bytes = Buffer.from(randomBytes(size))
  await upload(url, { width: 100, height: 10, mode: 'RGB', id: 'r' }, bytes)
  const partial: Array<[string, number, number]> = [
    ['bytes=0-0', 0, 0],
    ['bytes=10-19', 10, 19],
    ['bytes=2990-', 2990, 2999],
    ['bytes=-5', 2995, 2999],
    ['bytes=-99999', 0, 2999],
    ['bytes=100-99999', 100, 2999],
    ['bytes = 5-6', 5, 6],
  ]
  for (const [range, start, end] of partial) {
    const res = await download(url, 'r', { range })
    t.equal(res.status, 206, range)
    t.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${size}`)
    t.equal(res.headers.get('content-length'), String(end - start + 1))
    t.ok(Buffer.from(res.bytes).equals(bytes.subarray(start, end + 1)), `${range} bytes`)
    t.equal(res.headers.get('etag'), '"0"')
  }
  for (const range of ['bytes=3000-', 'bytes=3000-3001', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=a-b', 'bytes=99999999999999999999-']) {
    const res = await call(url, 'GET', '/images/r/data', undefined, { range })
    t.equal(res.status, 416, range)
    t.equal(res.body.code, 'PXP_ERR_BAD_RANGE')
    t.equal(res.headers.get('content-range'), `bytes */${size}`)
    t.notOk(res.headers.get('x-pixelport-generation'), 'an error carries no pixel headers')
  }
  for (const range of ['bytes=0-1,5-6', 'items=0-1', 'nonsense']) {
    const res = await download(url, 'r', { range })
    t.equal(res.status, 200, `${range} → whole body`)
    t.ok(Buffer.from(res.bytes).equals(bytes))
  }
  // If-Range: the range only applies to the representation the client already has.
  const matching = await download(url, 'r', { range: 'bytes=0-9', 'if-range': '"0"' })
  t.equal(matching.status, 206)
  for (const ifRange of ['"5"', 'W/"0"', 'Wed, 21 Oct 2015 07:28:00 GMT']) {
    const stale = await download(url, 'r', { range: 'bytes=0-9', 'if-range': ifRange })
    t.equal(stale.status, 200, `If-Range ${ifRange} → whole body`)
    t.equal(stale.bytes.byteLength, size)
  }
  // HEAD: same headers, no body, nothing held afterwards.
  const head = await fetch(url + '/images/r/data', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), String(size))
  t.equal(head.headers.get('x-pixelport-shape'), '10,100,3')
  t.equal((await head.arrayBuffer()).byteLength, 0)
  t.equal(server.snapshots.stats().snapshots, 1, 'every download of one generation shared one snapshot')
})

t.test('parseRange edge cases', async (t) => {
  t.equal(parseRange(undefined, 10), null)
  t.same(parseRange('bytes=0-', 1), { start: 0, end: 0 })
  t.same(parseRange('BYTES=1-2', 10), { start: 1, end: 2 })
  t.throws(() => parseRange('bytes=0-0', 0), { code: 'PXP_ERR_BAD_RANGE' })
  t.throws(() => parseRange('bytes=1-2-3', 10), { code: 'PXP_ERR_BAD_RANGE' })
  // A suffix longer than the body is the whole body (RFC 9110 §14.1.2), however many digits it has.
  t.same(parseRange('bytes=-99999999999999999999', 10), { start: 0, end: 9 })
})

t.test('a download holds its snapshot only while it is sent', async (t) => {
  const size = 256 * 256 * 4
  // Room for exactly one snapshot: a leaked one would make the next generation's download fail.
  const { url, server } = await startServer(t, { snapshotBytes: size + 1024 })
  await upload(url, { width: 256, height: 256, mode: 'RGBA', id: 's' }, randomBytes(size))
  for (let g = 1; g <= 5; g++) {
    const bytes = randomBytes(size)
    t.equal((await put(url, 's', bytes)).status, 200)
    const res = await download(url, 's', g % 2 === 0 ? { range: 'bytes=0-99' } : {})
    t.equal(res.status, g % 2 === 0 ? 206 : 200, `generation ${g} downloads`)
    t.equal(res.headers.get('x-pixelport-generation'), String(g))
    t.equal(server.snapshots.stats().snapshots, 1)
  }
  t.equal(server.snapshots.stats().bytes, size)
})
