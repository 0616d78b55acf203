/**
 * `Accept` on GET /images/:id: JSON by default, a picture when the client ranks an image type above JSON
 * and HTML; what real clients send decides which.
 */
import t from 'tap'
import { negotiatePicture } from '../../server/formats/negotiate.js'
import { startServer } from '../helpers/server.js'
import { fetchBytes, put, upload } from '../helpers/http.js'
import { decodeWithSharp, pattern } from '../helpers/picture-files.js'

/** What browsers send: a tab (navigation) and an <img> element. */
const CHROME_NAVIGATION = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7'
const CHROME_IMG = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
const FIREFOX_IMG = 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5'

t.test('negotiatePicture', async (t) => {
  const cases: Array<[string | undefined, string | null]> = [
    [undefined, null],
    ['', null],
    ['*/*', null],
    ['application/json', null],
    ['application/*', null],
    ['text/html', null],
    ['image/png', 'png'],
    ['IMAGE/PNG', 'png'],
    ['image/jpeg', 'jpeg'],
    ['image/webp', 'webp'],
    ['image/tiff', 'tiff'],
    ['image/*', 'png'],
    ['image/gif', null],
    ['image/png;q=0', null],
    ['image/png;q=0.5, application/json', null],
    ['application/json;q=0.5, image/png', 'png'],
    ['image/png;q=0.5, image/webp;q=0.9', 'webp'],
    ['image/webp, image/png', 'png'],
    ['image/*;q=0.9, image/jpeg', 'jpeg'],
    ['image/*, image/png;q=0', 'webp'],
    ['image/png;q=bogus, image/jpeg;q=0.1', 'jpeg'],
    ['image/png, */*;q=1', null],
    ['garbage, ,/, image/', null],
    [CHROME_NAVIGATION, null],
    [CHROME_IMG, 'png'],
    [FIREFOX_IMG, 'png'],
  ]
  for (const [accept, expected] of cases) t.equal(negotiatePicture(accept), expected, String(accept))
})

t.test('GET /images/:id answers JSON or a picture by Accept, with Vary and distinct ETags', async (t) => {
  const { url } = await startServer(t)
  const pixels = pattern(20 * 10 * 3, 3)
  await upload(url, { width: 20, height: 10, mode: 'RGB', id: 'cam1/frame' }, pixels)
  const path = '/images/cam1%2Fframe'

  for (const accept of [undefined, '*/*', 'application/json', CHROME_NAVIGATION]) {
    const res = await fetchBytes(url, path, accept === undefined ? {} : { accept })
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^application\/json/, `${accept ?? 'no Accept'}: JSON`)
    t.equal(JSON.parse(res.bytes.toString()).id, 'cam1/frame')
    t.equal(res.headers.get('vary'), 'Accept')
    t.equal(res.headers.get('etag'), '"0"')
  }

  const png = await fetchBytes(url, path, { accept: CHROME_IMG })
  t.equal(png.headers.get('content-type'), 'image/png')
  t.equal(png.headers.get('vary'), 'Accept')
  t.equal(png.headers.get('etag'), '"0.png"', 'a picture has its own tag on a URL that also serves JSON')
  t.equal(png.headers.get('x-pixelport-generation'), '0')
  t.ok((await decodeWithSharp(png.bytes)).data.equals(pixels))
  t.ok(png.bytes.equals((await fetchBytes(url, `${path}.png`)).bytes), 'the same picture as /images/:id.png')

  const jpeg = await fetchBytes(url, path, { accept: 'image/jpeg' })
  t.equal(jpeg.headers.get('content-type'), 'image/jpeg')
  t.equal(jpeg.headers.get('etag'), '"0.jpeg"')

  // Each representation is revalidated against its own tag.
  t.equal((await fetchBytes(url, path, { accept: 'image/png', 'if-none-match': '"0.png"' })).status, 304)
  t.equal((await fetchBytes(url, path, { accept: 'image/png', 'if-none-match': '"0"' })).status, 200)
  t.equal((await fetchBytes(url, path, { 'if-none-match': '"0.png"' })).status, 200)
  await put(url, 'cam1/frame', pattern(20 * 10 * 3, 4))
  const fresh = await fetchBytes(url, path, { accept: 'image/png', 'if-none-match': '"0.png"' })
  t.equal(fresh.status, 200)
  t.equal(fresh.headers.get('etag'), '"1.png"')

  const missing = await fetchBytes(url, '/images/nope', { accept: 'image/png' })
  t.equal(missing.status, 404)
  t.equal(JSON.parse(missing.bytes.toString()).code, 'PXP_ERR_NOT_FOUND')
})
