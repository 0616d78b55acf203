/**
 * Every way a request can fail: a 4xx/5xx with `{ code, message }` from the registry, and the store exactly
 * as it was before.
 */
import t, { type Test } from 'tap'
import { ERRORS } from '../../protocol/errors.js'
import { startServer } from '../helpers/server.js'
import { call, chunked, rawRequest, storeState, upload } from '../helpers/http.js'

const KiB = 1024

async function limitedServer (t: Test) {
  const started = await startServer(t, {
    blockSize: 256 * KiB,
    capacity: 1024 * KiB,
    maxImageBytes: 256 * KiB,
    maxJsonBytes: 1024,
    maxDimension: 4096,
    maxImages: 8,
  })
  // Something in the store, so "unchanged" means something.
  await upload(started.url, { width: 4, height: 4, mode: 'L', id: 'keep' }, new Uint8Array(16).fill(7))
  await call(started.url, 'POST', '/images', { width: 4, height: 4, mode: 'RGB', id: 'ro', readonly: true })
  return started
}

function checkError (t: Test, res: { status: number, body: any }, status: number, code: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status}`)
  t.equal(res.body?.code, code, `${what}: ${code}`)
  t.equal(ERRORS[code as keyof typeof ERRORS].status, status, `${what}: the registry's status`)
  t.type(res.body?.message, 'string')
  t.same(Object.keys(res.body ?? {}).sort(), ['code', 'message'], `${what}: only { code, message }`)
}

t.test('bad JSON creates', async (t) => {
  const { url, server } = await limitedServer(t)
  const before = storeState(server)
  const cases: Array<[string, unknown, number, string]> = [
    ['unknown mode', { width: 4, height: 4, mode: 'XYZ' }, 400, 'PXP_ERR_BAD_MODE'],
    ['unknown typestr', { shape: [4, 4], typestr: '<c8' }, 400, 'PXP_ERR_BAD_DTYPE'],
    ['negative width', { width: -4, height: 4, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['zero height', { width: 4, height: 0, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['fractional width', { width: 4.5, height: 4, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['absurd width', { width: 1e12, height: 4, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['width as a string', { width: '4', height: 4, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['too many bytes', { width: 4096, height: 4096, mode: 'RGBA' }, 413, 'PXP_ERR_TOO_LARGE'],
    ['absurd shape', { shape: [4096, 4096, 4096], typestr: '<f8' }, 413, 'PXP_ERR_TOO_LARGE'],
    ['negative shape', { shape: [4, -4], typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['nine dimensions', { shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['empty shape', { shape: [], typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['mode and shape', { width: 4, height: 4, mode: 'L', shape: [4, 4], typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['neither', { id: 'x' }, 400, 'PXP_ERR_VALIDATION'],
    ['shape without typestr', { shape: [4, 4] }, 400, 'PXP_ERR_VALIDATION'],
    ['unknown field', { width: 4, height: 4, mode: 'L', colour: 'red' }, 400, 'PXP_ERR_VALIDATION'],
    ['unknown layout', { width: 4, height: 4, mode: 'L', layout: 'tiles' }, 400, 'PXP_ERR_VALIDATION'],
    ['not an object', [1, 2], 400, 'PXP_ERR_VALIDATION'],
    ['id with ..', { width: 4, height: 4, mode: 'L', id: 'a/../b' }, 400, 'PXP_ERR_BAD_ID'],
    ['id with a leading /', { width: 4, height: 4, mode: 'L', id: '/a' }, 400, 'PXP_ERR_BAD_ID'],
    ['id with an empty segment', { width: 4, height: 4, mode: 'L', id: 'a//b' }, 400, 'PXP_ERR_BAD_ID'],
    ['empty id', { width: 4, height: 4, mode: 'L', id: '' }, 400, 'PXP_ERR_BAD_ID'],
    ['id with a space', { width: 4, height: 4, mode: 'L', id: 'a b' }, 400, 'PXP_ERR_BAD_ID'],
    ['id of 129 characters', { width: 4, height: 4, mode: 'L', id: 'a'.repeat(129) }, 400, 'PXP_ERR_BAD_ID'],
    ['taken id', { width: 4, height: 4, mode: 'L', id: 'keep' }, 409, 'PXP_ERR_ALREADY_EXISTS'],
    ['body over the JSON limit', { width: 4, height: 4, mode: 'L', id: 'x'.repeat(2000) }, 413, 'PXP_ERR_BODY_TOO_LARGE'],
  ]
  for (const [what, body, status, code] of cases) {
    checkError(t, await call(url, 'POST', '/images', body), status, code, what)
  }
  const malformed = await fetch(url + '/images', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"width": 4,' })
  checkError(t, { status: malformed.status, body: await malformed.json() }, 400, 'PXP_ERR_BAD_REQUEST', 'malformed JSON')
  const text = await fetch(url + '/images', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'RGB 4x4' })
  checkError(t, { status: text.status, body: await text.json() }, 415, 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE', 'text/plain')
  const none = await fetch(url + '/images', { method: 'POST' })
  checkError(t, { status: none.status, body: await none.json() }, 400, 'PXP_ERR_VALIDATION', 'no body')
  const emptyJson = await fetch(url + '/images', { method: 'POST', headers: { 'content-type': 'application/json' } })
  checkError(t, { status: emptyJson.status, body: await emptyJson.json() }, 400, 'PXP_ERR_VALIDATION', 'empty JSON body')
  const emptyView = await fetch(url + '/images/keep/views', { method: 'POST', headers: { 'content-type': 'application/json' } })
  checkError(t, { status: emptyView.status, body: await emptyView.json() }, 400, 'PXP_ERR_VALIDATION', 'empty JSON view body')
  const poisoned = await fetch(url + '/images', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"width":4,"height":4,"mode":"L","__proto__":{"readonly":true}}' })
  checkError(t, { status: poisoned.status, body: await poisoned.json() }, 400, 'PXP_ERR_BAD_REQUEST', 'prototype poisoning')
  t.same(storeState(server), before)
  // The header without a body is no body: a DELETE from a client that always sends it still works.
  const del = await fetch(url + '/images/keep', { method: 'DELETE', headers: { 'content-type': 'application/json' } })
  t.equal(del.status, 204)
})

t.test('bad raw uploads', async (t) => {
  const { url, server } = await limitedServer(t)
  const before = storeState(server)
  const good = { width: 8, height: 8, mode: 'L', id: 'new' }
  checkError(t, await upload(url, good, new Uint8Array(63)), 400, 'PXP_ERR_BYTE_COUNT', 'one byte short')
  checkError(t, await upload(url, good, new Uint8Array(65)), 400, 'PXP_ERR_BYTE_COUNT', 'one byte over')
  checkError(t, await upload(url, good, new Uint8Array(0)), 400, 'PXP_ERR_BYTE_COUNT', 'empty body')
  checkError(t, await upload(url, good, chunked(new Uint8Array(30), new Uint8Array(33))), 400, 'PXP_ERR_BYTE_COUNT', 'chunked, short')
  checkError(t, await upload(url, good, chunked(new Uint8Array(60), new Uint8Array(60))), 400, 'PXP_ERR_BYTE_COUNT', 'chunked, over')
  checkError(t, await upload(url, good, chunked()), 400, 'PXP_ERR_BYTE_COUNT', 'chunked, empty')
  const cases: Array<[string, Record<string, string | number>, number, string]> = [
    ['unknown mode', { width: 8, height: 8, mode: 'XYZ' }, 400, 'PXP_ERR_BAD_MODE'],
    ['unknown typestr', { shape: '8,8', typestr: '<c16' }, 400, 'PXP_ERR_BAD_DTYPE'],
    ['negative width', { width: -8, height: 8, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['width not a number', { width: 'eight', height: 8, mode: 'L' }, 400, 'PXP_ERR_VALIDATION'],
    ['shape not a list', { shape: '8x8', typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['shape with a zero', { shape: '0,64', typestr: '|u1' }, 400, 'PXP_ERR_BAD_SHAPE'],
    ['shape of nine dimensions', { shape: '1,1,1,1,1,1,1,1,64', typestr: '|u1' }, 400, 'PXP_ERR_VALIDATION'],
    ['absurd shape', { shape: '4096,4096,4096', typestr: '|u1' }, 413, 'PXP_ERR_TOO_LARGE'],
    ['unknown parameter', { width: 8, height: 8, mode: 'L', colour: 'red' }, 400, 'PXP_ERR_VALIDATION'],
    ['bad id', { width: 8, height: 8, mode: 'L', id: '.hidden' }, 400, 'PXP_ERR_BAD_ID'],
    ['taken id', { width: 8, height: 8, mode: 'L', id: 'keep' }, 409, 'PXP_ERR_ALREADY_EXISTS'],
  ]
  for (const [what, query, status, code] of cases) {
    checkError(t, await upload(url, query, new Uint8Array(64)), status, code, what)
  }
  // Over the per-image limit: refused from the headers alone, before a byte of the body is read.
  const huge = await rawRequest(url, {
    method: 'POST', path: '/images?shape=1024,1024&typestr=%7Cu1&id=huge', headers: { 'content-type': 'application/octet-stream', 'content-length': 1024 * 1024 },
  })
  checkError(t, { status: huge.status, body: JSON.parse(huge.body.toString()) }, 413, 'PXP_ERR_BODY_TOO_LARGE', 'Content-Length over the limit')
  t.equal(huge.headers.connection, 'close', 'the unread body is not drained: the connection closes')
  // A declared length that does not match: refused before memory is reserved.
  const mismatch = await rawRequest(url, {
    method: 'POST', path: '/images?width=8&height=8&mode=L&id=m', headers: { 'content-type': 'application/octet-stream', 'content-length': 100 },
  })
  checkError(t, { status: mismatch.status, body: JSON.parse(mismatch.body.toString()) }, 400, 'PXP_ERR_BYTE_COUNT', 'Content-Length mismatch')
  const octet = await fetch(url + '/images/keep/views', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(4) })
  checkError(t, { status: octet.status, body: await octet.json() }, 415, 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE', 'raw bytes where JSON is expected')
  t.same(storeState(server), before)
  t.equal((await upload(url, good, new Uint8Array(64))).status, 201, 'the id refused above is still free')
})

t.test('bad PUTs leave the pixels and the generation alone', async (t) => {
  const { url, server } = await limitedServer(t)
  const before = storeState(server)
  const putRaw = async (id: string, body: Uint8Array | ReadableStream<Uint8Array>, type = 'application/octet-stream') => {
    const res = await fetch(`${url}/images/${id}/data`, { method: 'PUT', headers: { 'content-type': type }, body, duplex: 'half' } as RequestInit)
    return { status: res.status, body: await res.json() }
  }
  checkError(t, await putRaw('keep', new Uint8Array(15)), 400, 'PXP_ERR_BYTE_COUNT', 'short')
  checkError(t, await putRaw('keep', new Uint8Array(17)), 400, 'PXP_ERR_BYTE_COUNT', 'long')
  checkError(t, await putRaw('keep', chunked(new Uint8Array(10))), 400, 'PXP_ERR_BYTE_COUNT', 'chunked, short')
  checkError(t, await putRaw('keep', chunked(new Uint8Array(10), new Uint8Array(10))), 400, 'PXP_ERR_BYTE_COUNT', 'chunked, long')
  checkError(t, await putRaw('keep', new Uint8Array(16), 'application/json'), 415, 'PXP_ERR_UNSUPPORTED_MEDIA_TYPE', 'JSON body')
  checkError(t, await putRaw('ro', new Uint8Array(48)), 409, 'PXP_ERR_READONLY', 'read-only image')
  checkError(t, await putRaw('nope', new Uint8Array(16)), 404, 'PXP_ERR_NOT_FOUND', 'unknown id')
  const empty = await fetch(`${url}/images/keep/data`, { method: 'PUT' })
  checkError(t, { status: empty.status, body: await empty.json() }, 400, 'PXP_ERR_BYTE_COUNT', 'no body')
  const huge = await rawRequest(url, { method: 'PUT', path: '/images/keep/data', headers: { 'content-type': 'application/octet-stream', 'content-length': 10 * 1024 * 1024 } })
  checkError(t, { status: huge.status, body: JSON.parse(huge.body.toString()) }, 413, 'PXP_ERR_BODY_TOO_LARGE', 'over the limit')
  t.same(storeState(server), before)
  const data = await fetch(`${url}/images/keep/data`)
  t.equal(data.headers.get('x-pixelport-generation'), '0')
  t.same(new Uint8Array(await data.arrayBuffer()), new Uint8Array(16).fill(7))
})

t.test('ids: malformed ones are PXP_ERR_BAD_ID on every route, unknown ones PXP_ERR_NOT_FOUND', async (t) => {
  const { url, server } = await limitedServer(t)
  const before = storeState(server)
  const routes: Array<[string, string, unknown?]> = [
    ['GET', ''], ['DELETE', ''], ['GET', '/data'], ['POST', '/views', { x: 0, y: 0, width: 1, height: 1 }],
  ]
  for (const [method, suffix, body] of routes) {
    for (const bad of ['x%2F..', '.x', '%2Fa', 'a%2F', 'a%2F%2Fb', 'a%2F..%2Fb', 'a%20b', '%E0%A4%A', 'a'.repeat(129), 'a'.repeat(600)]) {
      checkError(t, await call(url, method, `/images/${bad}${suffix}`, body), 400, 'PXP_ERR_BAD_ID', `${method} /images/${bad.slice(0, 20)}${suffix}`)
    }
    checkError(t, await call(url, method, `/images/missing${suffix}`, body), 404, 'PXP_ERR_NOT_FOUND', `${method} unknown id`)
  }
  // WHATWG URLs (fetch) resolve a literal '..' segment away; node:http sends it as it is, and the router
  // never takes it for an id.
  const dots = await rawRequest(url, { method: 'GET', path: '/images/../data' })
  checkError(t, { status: dots.status, body: JSON.parse(dots.body.toString()) }, 404, 'PXP_ERR_ROUTE_NOT_FOUND', 'literal ..')
  checkError(t, await call(url, 'GET', '/nope'), 404, 'PXP_ERR_ROUTE_NOT_FOUND', 'unknown route')
  checkError(t, await call(url, 'POST', '/images/keep/data', {}), 404, 'PXP_ERR_ROUTE_NOT_FOUND', 'unknown method')
  // An unencoded '/' is a different path, not an id with a slash.
  checkError(t, await call(url, 'GET', '/images/cam1/frame'), 404, 'PXP_ERR_ROUTE_NOT_FOUND', 'unencoded slash')
  t.same(storeState(server), before)
})

t.test('capacity: full is 507 and changes nothing', async (t) => {
  const { url, server } = await limitedServer(t)
  const ids: string[] = []
  // 200 KiB images until the store is full.
  for (let i = 0; ; i++) {
    const res = await call(url, 'POST', '/images', { shape: [200, 1024], typestr: '|u1', id: `big${i}` })
    if (res.status !== 201) {
      checkError(t, res, 507, 'PXP_ERR_CAPACITY', 'the create that does not fit')
      break
    }
    ids.push(`big${i}`)
  }
  t.ok(ids.length >= 3, `${ids.length} fitted`)
  const before = storeState(server)
  checkError(t, await call(url, 'POST', '/images', { shape: [200, 1024], typestr: '|u1', id: 'one-more' }), 507, 'PXP_ERR_CAPACITY', 'JSON create when full')
  checkError(t, await call(url, 'POST', '/images', { shape: [200, 1024], typestr: '|u1', id: 'one-more', layout: 'lines' }), 507, 'PXP_ERR_CAPACITY', 'lines create when full')
  const raw = await rawRequest(url, {
    method: 'POST', path: '/images?shape=200,1024&typestr=%7Cu1&id=raw-more', headers: { 'content-type': 'application/octet-stream', 'content-length': 200 * 1024 },
  })
  checkError(t, { status: raw.status, body: JSON.parse(raw.body.toString()) }, 507, 'PXP_ERR_CAPACITY', 'raw upload when full')
  t.same(storeState(server), before)
  // Deleting one makes room again.
  t.equal((await call(url, 'DELETE', `/images/${ids[0]}`)).status, 204)
  t.equal((await call(url, 'POST', '/images', { shape: [200, 1024], typestr: '|u1', id: 'one-more' })).status, 201)
})

t.test('too many images: 507 and nothing changes', async (t) => {
  const { url, server } = await limitedServer(t)
  for (let i = 0; i < 6; i++) t.equal((await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L', id: `n${i}` })).status, 201)
  const before = storeState(server)
  checkError(t, await call(url, 'POST', '/images', { width: 2, height: 2, mode: 'L', id: 'n6' }), 507, 'PXP_ERR_TOO_MANY_IMAGES', 'JSON create')
  checkError(t, await upload(url, { width: 2, height: 2, mode: 'L', id: 'n6' }, new Uint8Array(4)), 507, 'PXP_ERR_TOO_MANY_IMAGES', 'raw upload')
  checkError(t, await call(url, 'POST', '/images/n0/views', { x: 0, y: 0, width: 1, height: 1 }), 507, 'PXP_ERR_TOO_MANY_IMAGES', 'view')
  t.same(storeState(server), before)
})
