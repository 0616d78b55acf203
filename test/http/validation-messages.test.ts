/**
 * HTTP refusals say what to send instead: the field by name and the allowed fields or values, what a typestr
 * is, the media types a route takes, and the URL an id with an unencoded "/" should have used.
 */
import t from 'tap'
import { call, storeState } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

const TYPESTR = 'byte order (< little, > big, | not applicable), kind (u unsigned, i signed, f float, b bool) and item size ' +
  'in bytes, e.g. "<f4" or "|u1"; supported: |u1 |i1 |b1 <u2 <i2 <u4 <i4 <f4 <f8 <u8 <i8 >u2 >i2 >u4 >i4 >f4 >f8 <f2'

t.test('JSON bodies: the field by name, with what it may be', async (t) => {
  const { url, server } = await startServer(t)
  await call(url, 'POST', '/images', { width: 4, height: 2, mode: 'L', id: 'demo/gradient' })
  const before = storeState(server)
  const cases: Array<[string, unknown, string, string]> = [
    ['unknown field', { width: 4, height: 4, mode: 'L', name: 'x' }, 'PXP_ERR_VALIDATION',
      'Invalid input: unknown field "name" in body; allowed fields: width, height, mode, shape, typestr, frames, id, layout, readonly'],
    ['unknown mode', { width: 4, height: 4, mode: 'rgb' }, 'PXP_ERR_BAD_MODE',
      'Unknown image mode "rgb"; the modes are 1, L, P, LA, PA, RGB, YCbCr, LAB, HSV, RGBA, RGBX, CMYK, I;16, I;16B, I, F'],
    ['typestr too long', { shape: [4], typestr: 'float32' }, 'PXP_ERR_VALIDATION',
      `Invalid input: body/typestr must be a numpy typestr: ${TYPESTR}`],
    ['unsupported typestr', { shape: [4], typestr: '<c8' }, 'PXP_ERR_BAD_DTYPE',
      `Unsupported typestr "<c8"; a numpy typestr is ${TYPESTR}`],
    ['unknown layout', { width: 4, height: 4, mode: 'L', layout: 'tiles' }, 'PXP_ERR_VALIDATION',
      'Invalid input: body/layout must be one of "block", "lines"'],
  ]
  for (const [what, body, code, message] of cases) {
    const res = await call(url, 'POST', '/images', body)
    t.equal(res.status, 400, `${what}: 400`)
    t.same(res.body, { code, message }, what)
  }
  const view = await call(url, 'POST', '/images/demo%2Fgradient/views', { x: 0, y: 0, width: 1, height: 1, depth: 2 })
  t.same(view.body, {
    code: 'PXP_ERR_VALIDATION',
    message: 'Invalid input: unknown field "depth" in body; allowed fields: x, y, width, height, id, readonly',
  }, 'views name their own fields')
  const missing = await call(url, 'POST', '/images/demo%2Fgradient/views', { x: 0, y: 0, width: 1 })
  t.same(missing.body, { code: 'PXP_ERR_VALIDATION', message: 'Invalid input: body needs the field "height"' })
  const query = await fetch(`${url}/images?shape=4x4&typestr=|u1`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(16) })
  t.same(await query.json(), {
    code: 'PXP_ERR_VALIDATION',
    message: 'Invalid input: querystring/shape must be 1 to 8 dimensions separated by commas, e.g. 480,640,3',
  })
  t.same(storeState(server), before, 'nothing changed')
})

t.test('415 names the type received, the route and the types it takes', async (t) => {
  const { url } = await startServer(t)
  const create = await fetch(`${url}/images?width=2&height=2&mode=L`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'abcd' })
  t.equal(create.status, 415)
  t.same(await create.json(), {
    code: 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE',
    message: 'Unsupported content type "text/plain" for POST /images; ' +
      'accepted: application/json, application/octet-stream, image/png, image/jpeg, image/webp, image/tiff',
  })
  await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L', id: 'a' })
  const put = await fetch(`${url}/images/a/data`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'abcd' })
  t.equal(put.status, 415)
  t.same(await put.json(), {
    code: 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE',
    message: 'Unsupported content type "text/plain" for PUT /images/a/data; accepted: application/octet-stream',
  })
})

t.test('an id with an unencoded "/": a 404 that gives the percent-encoded URL, on every route shape', async (t) => {
  const { url } = await startServer(t)
  await call(url, 'POST', '/images', { width: 4, height: 2, mode: 'L', id: 'demo/gradient' })
  const cases: Array<[string, string, string]> = [
    ['GET', '/images/demo/gradient', '/images/demo%2Fgradient'],
    ['DELETE', '/images/demo/gradient', '/images/demo%2Fgradient'],
    ['GET', '/images/demo/gradient/data', '/images/demo%2Fgradient/data'],
    ['PUT', '/images/demo/gradient/data', '/images/demo%2Fgradient/data'],
    ['POST', '/images/demo/gradient/views', '/images/demo%2Fgradient/views'],
    ['GET', '/images/demo/gradient.png', '/images/demo%2Fgradient.png'],
    ['GET', '/images/cam/2/main.webp', '/images/cam%2F2%2Fmain.webp'],
  ]
  for (const [method, path, encoded] of cases) {
    const res = await fetch(url + path, { method })
    t.equal(res.status, 404, `${method} ${path}: 404`)
    t.same(await res.json(), {
      code: 'PXP_ERR_ROUTE_NOT_FOUND',
      message: `No route ${method} ${path}: an id that contains "/" is percent-encoded in the path (%2F): ${method} ${encoded}`,
    }, `${method} ${path}`)
  }
  // The encoded URL the message gives is the one that works.
  t.equal((await fetch(`${url}/images/demo%2Fgradient`)).status, 200)
  // Paths that are not image routes get no hint.
  t.same(await (await fetch(`${url}/nothing/here`)).json(), { code: 'PXP_ERR_ROUTE_NOT_FOUND', message: 'No route GET /nothing/here' })
})
