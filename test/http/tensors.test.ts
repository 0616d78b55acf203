/**
 * Tensor-friendly shapes over HTTP and WebSocket: float16 (`<f2`), up to 8 dimensions, 1-D arrays as long
 * as the byte limit allows, and the refusals just past each limit.
 */
import t from 'tap'
import { halfToNumber } from '../../protocol/dtypes.js'
import { descriptorFromSlot, findSlot } from '../../protocol/slot-reader.js'
import { call, download, put, storeState, upload } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'

const KiB = 1024
const LIMITS = { maxImageBytes: 256 * KiB, maxDimension: 4096, blockSize: 512 * KiB, capacity: 4096 * KiB }

/** float16 bits of a few values numpy gives: 1, -2, 0.5, 65504 (largest), 2^-24 (smallest subnormal), inf. */
const HALVES: Array<[number, number]> = [[0x3c00, 1], [0xc000, -2], [0x3800, 0.5], [0x7bff, 65504], [0x0001, 2 ** -24], [0x7c00, Infinity]]

function halfBytes (): Uint8Array {
  return new Uint8Array(new Uint16Array(HALVES.map(([bits]) => bits)).buffer)
}

function pattern (n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 37 + (i >> 8)) & 0xff)
}

t.test('halfToNumber reads IEEE 754 half precision', async (t) => {
  for (const [bits, value] of HALVES) t.equal(halfToNumber(bits), value, `0x${bits.toString(16)}`)
  t.ok(Number.isNaN(halfToNumber(0x7e00)), 'NaN')
  t.equal(Object.is(halfToNumber(0x8000), -0), true, '-0')
})

t.test('<f2 over HTTP: upload, describe, read back, overwrite; no picture of it', async (t) => {
  const { url } = await startServer(t, LIMITS)
  const created = await upload(url, { id: 'half', shape: '2,3', typestr: '<f2' }, halfBytes())
  t.equal(created.status, 201)
  t.match(created.body, { id: 'half', typestr: '<f2', shape: [2, 3], byteLength: 12, mode: null })
  t.same((await download(url, 'half')).bytes, halfBytes())
  const json = await call(url, 'POST', '/images', { id: 'half2', shape: [6], typestr: 'f2' })
  t.match(json.body, { typestr: '<f2', shape: [6] }, 'numpy\'s "f2" is "<f2"')
  t.equal((await put(url, 'half2', halfBytes())).status, 200)
  t.same((await download(url, 'half2')).bytes, halfBytes())
  const png = await fetch(`${url}/images/half.png`)
  t.equal(png.status, 406)
  t.same(await png.json(), {
    code: 'PXP_ERR_NOT_ENCODABLE',
    message: 'Image "half" cannot be encoded as png: float16 (<f2) images are not encoded as pictures; read /data',
  })
})

t.test('8 dimensions over HTTP, in the descriptor and in the shared table', async (t) => {
  const { url, server } = await startServer(t, LIMITS)
  const shape = [2, 3, 1, 2, 2, 1, 3, 2]
  const bytes = pattern(2 * 3 * 2 * 2 * 3 * 2 * 4)
  const created = await upload(url, { id: 't8', shape: shape.join(','), typestr: '<f4' }, bytes)
  t.equal(created.status, 201)
  t.match(created.body, { shape, typestr: '<f4', __array_interface__: { shape, typestr: '<f4' } })
  t.same((await download(url, 't8')).bytes, bytes)
  // What a worker thread or another process reads: dimensions 5-8 live in words of their own.
  const words = server.store.table.words
  const slot = findSlot(words, 't8')
  t.ok(slot !== null)
  const fromSlot = descriptorFromSlot(words, slot!.slot)
  t.same(fromSlot.shape, shape)
  t.same(fromSlot.__array_interface__.shape, shape)
  const nine = await call(url, 'POST', '/images', { shape: [1, 1, 1, 1, 1, 1, 1, 1, 2], typestr: '|u1' })
  t.equal(nine.status, 400)
  t.equal(nine.body.code, 'PXP_ERR_VALIDATION')
})

t.test('1-D: as long as the byte limit, not maxDimension; refused one item past it', async (t) => {
  const { url, server } = await startServer(t, LIMITS)
  const long = pattern(LIMITS.maxImageBytes)
  const created = await upload(url, { id: 'signal', shape: String(long.length), typestr: '|u1' }, long)
  t.equal(created.status, 201, `${long.length} items, maxDimension ${LIMITS.maxDimension}`)
  t.match(created.body, { shape: [LIMITS.maxImageBytes], width: 1, height: LIMITS.maxImageBytes })
  t.same((await download(url, 'signal')).bytes, long)
  const floats = await call(url, 'POST', '/images', { id: 'f', shape: [LIMITS.maxImageBytes / 4], typestr: '<f4' })
  t.equal(floats.status, 201, 'maxImageBytes / itemsize items of <f4')
  const before = storeState(server)
  const refusals: Array<[string, unknown, number, string, string]> = [
    ['one item past the byte limit', { shape: [LIMITS.maxImageBytes / 4 + 1], typestr: '<f4' }, 413, 'PXP_ERR_TOO_LARGE',
      `Image of ${LIMITS.maxImageBytes + 4} bytes exceeds the per-image limit of ${LIMITS.maxImageBytes} bytes`],
    ['2-D keeps maxDimension', { shape: [LIMITS.maxDimension + 1, 1], typestr: '|u1' }, 400, 'PXP_ERR_BAD_SHAPE',
      `Invalid shape: shape[0] must be an integer from 1 to ${LIMITS.maxDimension}, got ${LIMITS.maxDimension + 1}`],
  ]
  for (const [what, body, status, code, message] of refusals) {
    const res = await call(url, 'POST', '/images', body)
    t.equal(res.status, status, what)
    t.same(res.body, { code, message }, what)
  }
  t.same(storeState(server), before, 'refusals change nothing')
})

t.test('the same over WebSocket: <f2, 8-D and a long 1-D array', async (t) => {
  const { url } = await startServer(t, LIMITS)
  const c = await WireClient.connect(t, url)
  const half = await c.request({ op: 'put', id: 'half', shape: [1, 1, 1, 1, 1, 1, 2, 3], typestr: '<f2', data: Buffer.from(halfBytes()) })
  t.match(half, { op: 'descriptor', descriptor: { id: 'half', typestr: '<f2', shape: [1, 1, 1, 1, 1, 1, 2, 3] } })
  t.same(new Uint8Array((await c.get('half')).bytes), halfBytes())
  const long = pattern(LIMITS.maxImageBytes / 2)
  const signal = await c.request({ op: 'put', id: 'signal', shape: [long.length / 2], typestr: '<u2', data: Buffer.from(long) })
  t.match(signal, { op: 'descriptor', descriptor: { shape: [long.length / 2] } })
  t.same(new Uint8Array((await c.get('signal')).bytes), long)
  t.match(await c.request({ op: 'create', shape: [LIMITS.maxImageBytes + 1], typestr: '|u1' }), { op: 'error', code: 'PXP_ERR_TOO_LARGE' })
  t.match(await c.request({ op: 'create', shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], typestr: '|u1' }), { op: 'error', code: 'PXP_ERR_VALIDATION' })
  t.same(c.invalid, [])
})
