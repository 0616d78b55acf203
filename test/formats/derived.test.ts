/**
 * Derived pictures: GET /images/:id.<format> with a crop (x, y, w, h) and a resize (width, height, fit),
 * decoded again with sharp; the cache of encoded pictures (hits counted, a new generation or a new image
 * under the same id never served from it); bad parameters refused; token scopes still apply.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, errorOf, fetchBytes, picturePath, put, upload } from '../helpers/http.js'
import { decodeWithSharp, pattern, u16le } from '../helpers/picture-files.js'

const W = 40
const H = 30

/** Rows top..top+h, columns left..left+w of a C-order image with `channels` samples of `size` bytes. */
function cropOf (bytes: Uint8Array, width: number, channels: number, size: number, left: number, top: number, w: number, h: number): Buffer {
  const pixel = channels * size
  const rows: Uint8Array[] = []
  for (let y = top; y < top + h; y++) rows.push(bytes.subarray((y * width + left) * pixel, (y * width + left + w) * pixel))
  return Buffer.concat(rows)
}

/** The `result` counts of pixelport_picture_requests_total. */
async function pictureCounts (url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url + '/metrics')).text()
  const counts: Record<string, number> = {}
  for (const m of text.matchAll(/^pixelport_picture_requests_total\{result="(\w+)"\} (\d+)$/gm)) counts[m[1]] = Number(m[2])
  return counts
}

t.test('resize: every fit gives the size sharp promises', async (t) => {
  const { url } = await startServer(t)
  await upload(url, { width: W, height: H, mode: 'RGB', id: 'cam/rgb' }, pattern(W * H * 3, 5))
  const cases: Array<[string, number, number, number]> = [
    ['width=20&height=20&fit=inside', 20, 15, 3],
    ['width=20&height=20', 20, 15, 3],
    ['width=20&height=20&fit=fill', 20, 20, 3],
    ['width=20&height=20&fit=cover', 20, 20, 3],
    // contain pads with transparent pixels: the picture gains an alpha channel.
    ['width=20&height=20&fit=contain', 20, 20, 4],
    ['width=20&height=20&fit=outside', 27, 20, 3],
    ['width=10', 10, 8, 3],
    ['height=60', 80, 60, 3],
  ]
  for (const [query, width, height, channels] of cases) {
    const res = await fetchBytes(url, picturePath('cam/rgb', 'png', `?${query}`))
    t.equal(res.status, 200, query)
    t.match(await decodeWithSharp(res.bytes), { width, height, channels }, `${query}: ${width}x${height}`)
  }
  for (const extension of ['webp', 'jpeg', 'tiff']) {
    const res = await fetchBytes(url, picturePath('cam/rgb', extension, '?width=16&height=16&fit=inside'))
    t.equal(res.status, 200)
    t.match(await decodeWithSharp(res.bytes), { width: 16, height: 12 }, `${extension} thumbnail`)
  }
})

t.test('crop: exactly the pixels of the rectangle, before the resize', async (t) => {
  const { url } = await startServer(t)
  const rgba = pattern(W * H * 4, 9)
  await upload(url, { width: W, height: H, mode: 'RGBA', id: 'rgba' }, rgba)
  const png = await decodeWithSharp((await fetchBytes(url, picturePath('rgba', 'png', '?x=5&y=3&w=7&h=4'))).bytes)
  t.match(png, { width: 7, height: 4, channels: 4 })
  t.ok(png.data.equals(cropOf(rgba, W, 4, 1, 5, 3, 7, 4)), 'PNG crop: the same pixels')
  const webp = await decodeWithSharp((await fetchBytes(url, picturePath('rgba', 'webp', '?x=30&y=20&lossless=true'))).bytes)
  t.ok(webp.data.equals(cropOf(rgba, W, 4, 1, 30, 20, 10, 10)), 'w and h default to the rest of the image')

  const values = Array.from({ length: W * H }, (_, i) => (i * 977 + 11) & 0xffff)
  await upload(url, { width: W, height: H, mode: 'I;16', id: 'depth' }, u16le(values))
  const sixteen = await decodeWithSharp((await fetchBytes(url, picturePath('depth', 'png', '?x=1&y=2&w=3&h=5'))).bytes)
  t.match(sixteen, { width: 3, height: 5, depth: 'ushort' })
  const expected = Array.from({ length: 15 }, (_, i) => values[(2 + Math.floor(i / 3)) * W + 1 + (i % 3)])
  t.same([...new Uint16Array(sixteen.data.buffer, sixteen.data.byteOffset, 15)], expected, '16-bit crop: the same samples')

  // A uniform crop resized stays that colour: the resize sees only the crop.
  const halves = new Uint8Array(W * H).map((_, i) => (i % W) < 20 ? 0 : 200)
  await upload(url, { width: W, height: H, mode: 'L', id: 'halves' }, halves)
  const right = await decodeWithSharp((await fetchBytes(url, picturePath('halves', 'png', '?x=20&w=20&width=8&height=8&fit=fill'))).bytes)
  t.match(right, { width: 8, height: 8, channels: 1 })
  t.ok(right.data.every((v) => v === 200), 'the crop is taken before the resize')
})

t.test('cache: a repeated request is a hit; a new generation or a new image is not served from it', async (t) => {
  const { url } = await startServer(t)
  const first = pattern(W * H, 1)
  await upload(url, { width: W, height: H, mode: 'L', id: 'live' }, first)
  const thumb = picturePath('live', 'png', '?width=20&height=20&fit=inside')

  const a = await fetchBytes(url, thumb)
  t.equal(a.headers.get('x-pixelport-cache'), 'miss')
  const b = await fetchBytes(url, thumb)
  t.equal(b.headers.get('x-pixelport-cache'), 'hit', 'the same request again is a hit')
  t.ok(b.bytes.equals(a.bytes), 'with the same picture')
  t.equal(b.headers.get('etag'), a.headers.get('etag'))
  t.match(await pictureCounts(url), { encoded: 1, hit: 1 }, 'one encode for two requests')
  t.equal((await fetchBytes(url, picturePath('live', 'png', '?width=21'))).headers.get('x-pixelport-cache'), 'miss', 'other parameters: another entry')
  t.equal((await fetchBytes(url, picturePath('live', 'webp', '?width=20&height=20'))).headers.get('x-pixelport-cache'), 'miss', 'another format: another entry')

  const second = new Uint8Array(W * H).fill(77)
  t.equal((await put(url, 'live', second)).status, 200)
  const c = await fetchBytes(url, thumb)
  t.equal(c.headers.get('x-pixelport-cache'), 'miss', 'a new generation is encoded again')
  t.not(c.headers.get('etag'), a.headers.get('etag'))
  t.ok((await decodeWithSharp(c.bytes)).data.every((v) => v === 77), 'and shows the new pixels')

  // Deleted and created again: the new image's generations start over, the cache must not mix them up.
  t.equal((await call(url, 'DELETE', '/images/live')).status, 204)
  await upload(url, { width: W, height: H, mode: 'L', id: 'live' }, new Uint8Array(W * H).fill(9))
  const d = await fetchBytes(url, thumb)
  t.equal(d.headers.get('x-pixelport-cache'), 'miss', 'a new image under the same id is encoded again')
  t.ok((await decodeWithSharp(d.bytes)).data.every((v) => v === 9), 'and shows its own pixels')
})

t.test('bad parameters: PXP_ERR_VALIDATION, a crop outside the image PXP_ERR_BAD_REGION', async (t) => {
  const { url } = await startServer(t)
  await upload(url, { width: W, height: H, mode: 'RGB', id: 'img' }, pattern(W * H * 3, 2))
  const validation = ['width=0', 'width=8193', 'height=-3', 'width=ten', 'fit=stretch&width=3', 'fit=cover', 'x=-1', 'w=0', 'size=3',
    'width=8192&height=1&fit=outside', 'quality=80']
  for (const query of validation) {
    const res = await fetchBytes(url, picturePath('img', 'png', `?${query}`))
    t.equal(res.status, 400, query)
    t.equal(errorOf(res).code, 'PXP_ERR_VALIDATION', `${query}: ${errorOf(res).message}`)
  }
  for (const query of ['x=40', 'x=35&w=10', 'y=29&h=2', 'x=0&y=0&w=41&h=30']) {
    const res = await fetchBytes(url, picturePath('img', 'webp', `?${query}`))
    t.equal(res.status, 400, query)
    t.equal(errorOf(res).code, 'PXP_ERR_BAD_REGION', `${query}: ${errorOf(res).message}`)
  }
  t.equal((await fetchBytes(url, picturePath('img', 'webp', '?effort=7'))).status, 400, 'WebP effort is 0-6')
  t.equal((await fetchBytes(url, picturePath('img', 'webp', '?effort=6&quality=50'))).status, 200)
})

t.test('token scopes apply to derived pictures and to the cache', async (t) => {
  const { url } = await startServer(t, {
    tokens: [{ token: 'writer-token-0123456789abcdef', scopes: ['write', 'read'] }, { token: 'cam-only-token-0123456789abc', scopes: ['read'], ids: ['cam/*'] }],
  })
  const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
  for (const id of ['cam/a', 'secret/b']) {
    const res = await fetch(`${url}/images?${new URLSearchParams({ width: String(W), height: String(H), mode: 'L', id })}`, {
      method: 'POST', headers: { ...auth('writer-token-0123456789abcdef'), 'content-type': 'application/octet-stream' }, body: pattern(W * H, 3),
    })
    t.equal(res.status, 201)
  }
  const thumb = (id: string): string => picturePath(id, 'png', '?width=10&height=10')
  // Cached by a reader who may read it…
  t.equal((await fetchBytes(url, thumb('secret/b'), auth('writer-token-0123456789abcdef'))).status, 200)
  t.equal((await fetchBytes(url, thumb('secret/b'), auth('writer-token-0123456789abcdef'))).headers.get('x-pixelport-cache'), 'hit')
  // …and still refused to one who may not, and to no token at all.
  const refused = await fetchBytes(url, thumb('secret/b'), auth('cam-only-token-0123456789abc'))
  t.ok(refused.status === 403 || refused.status === 404, `another prefix's picture is refused (${refused.status})`)
  t.equal((await fetchBytes(url, thumb('secret/b'))).status, 401, 'no token: 401')
  t.equal((await fetchBytes(url, thumb('cam/a'), auth('cam-only-token-0123456789abc'))).status, 200, 'its own prefix is fine')
})
