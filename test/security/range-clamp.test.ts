/**
 * Issue 12, item 9: a `Range` whose end lies beyond the image is clamped to the last byte (RFC 9110
 * §14.1.2), however large the number; it used to be refused with 416 once the number passed 2^53.
 */
import t from 'tap'
import { parseRange } from '../../server/http/range.js'
import { download, randomBytes, upload } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

const HUGE = ['99999999999999999999999', '9007199254740992', '1' + '0'.repeat(400)]

t.test('a range end past the image, however large, is clamped to the last byte', async (t) => {
  const { url } = await startServer(t)
  const bytes = randomBytes(40 * 25)
  const size = bytes.byteLength
  await upload(url, { width: 40, height: 25, mode: 'L', id: 'r' }, bytes)
  for (const [start, end] of [[0, HUGE[0]], [10, HUGE[1]], [size - 1, HUGE[2]], [0, String(size)], [7, String(size + 1000)]] as const) {
    const range = `bytes=${start}-${end}`
    const res = await download(url, 'r', { range })
    t.equal(res.status, 206, `${range.slice(0, 40)} → 206`)
    t.equal(res.headers.get('content-range'), `bytes ${start}-${size - 1}/${size}`)
    t.ok(Buffer.from(res.bytes).equals(bytes.subarray(start)), 'the bytes from start to the end')
  }
  // A suffix longer than the image is the whole image; a start past the end is still 416.
  const suffix = await download(url, 'r', { range: `bytes=-${HUGE[0]}` })
  t.equal(suffix.status, 206)
  t.equal(suffix.headers.get('content-range'), `bytes 0-${size - 1}/${size}`)
  t.ok(Buffer.from(suffix.bytes).equals(bytes))
  const past = await download(url, 'r', { range: `bytes=${HUGE[0]}-${HUGE[0]}` })
  t.equal(past.status, 416)
})

t.test('parseRange clamps, and never returns a position that is not a byte of the body', async (t) => {
  t.same(parseRange(`bytes=0-${HUGE[0]}`, 100), { start: 0, end: 99 })
  t.same(parseRange(`bytes=50-${HUGE[2]}`, 100), { start: 50, end: 99 })
  t.same(parseRange(`bytes=-${HUGE[1]}`, 100), { start: 0, end: 99 })
  t.throws(() => parseRange(`bytes=${HUGE[0]}-`, 100), { code: 'PXP_ERR_BAD_RANGE' })
  t.throws(() => parseRange(`bytes=${HUGE[1]}-${HUGE[0]}`, 100), { code: 'PXP_ERR_BAD_RANGE' })
})
