/**
 * Tokens over HTTP, on a real server: who gets in, what each scope allows, id limits that reveal nothing.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call as callWith, type Answer } from '../helpers/tokens.js'

const ADMIN = 'a'.repeat(32)
const READER = 'r'.repeat(32)
const WRITER = 'w'.repeat(32)
const CAM1 = 'c'.repeat(32)
const tokens = [
  { token: ADMIN, scopes: ['admin' as const] },
  { token: READER, scopes: ['read' as const] },
  { token: WRITER, scopes: ['read' as const, 'write' as const] },
  { token: CAM1, scopes: ['read' as const, 'write' as const], ids: ['cam1/*'] },
]

function auth (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

async function call (url: string, init: Parameters<typeof callWith>[2] & { token?: string } = {}): Promise<Answer> {
  return await callWith(url, init.token, init)
}

const json = { 'content-type': 'application/json' }

t.test('HTTP with tokens', async (t) => {
  const { server, url } = await startServer(t, { tokens })
  server.store.create({ id: 'cam1/a', width: 4, height: 2, mode: 'L' })
  server.store.create({ id: 'cam2/b', width: 4, height: 2, mode: 'L' })

  t.test('no token: 401 with WWW-Authenticate, everywhere but public routes', async (t) => {
    for (const path of ['/images', '/images/cam1%2Fa', '/images/cam1%2Fa/data', '/images/nope', '/stats', '/metrics', '/no-such-route']) {
      const r = await call(url + path)
      t.equal(r.status, 401, path)
      t.equal(r.body.code, 'PXP_ERR_UNAUTHORIZED', path)
      t.match(r.headers.get('www-authenticate'), /^Bearer/, path)
    }
    const health = await call(url + '/healthz')
    t.equal(health.status, 200, '/healthz is public')
    t.same(health.body, { ok: true }, 'and tells nothing about images without a token')
    t.equal((await call(url + '/docs/json')).status, 200, 'API docs are public')
  })

  t.test('a wrong token is refused the same way, whatever the id', async (t) => {
    const a = await call(url + '/images/cam1%2Fa', { token: 'x'.repeat(32) })
    const b = await call(url + '/images/does-not-exist', { token: 'x'.repeat(32) })
    t.equal(a.status, 401)
    t.same(a.body, b.body, 'identical answers for an existing and a missing id')
    t.equal((await call(url + '/images', { headers: { authorization: 'Basic abc' } })).status, 401, 'not a bearer token')
    t.equal((await call(url + '/healthz', { token: 'x'.repeat(32) })).status, 401, 'a wrong token is never ignored, even on public routes')
  })

  t.test('read scope reads, cannot write', async (t) => {
    t.equal((await call(url + '/images', { token: READER })).body.images.length, 2)
    t.equal((await call(url + '/images/cam1%2Fa/data', { token: READER })).status, 200)
    const created = await call(url + '/images', { method: 'POST', token: READER, headers: json, body: JSON.stringify({ id: 'r/x', width: 1, height: 1, mode: 'L' }) })
    t.equal(created.status, 403)
    t.equal(created.body.code, 'PXP_ERR_FORBIDDEN')
    t.equal((await call(url + '/images/cam1%2Fa', { method: 'DELETE', token: READER })).status, 403)
    t.equal((await call(url + '/images/cam1%2Fa/data', { method: 'PUT', token: READER, headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(8) })).status, 403)
    t.equal(server.store.size, 2, 'the store is unchanged')
    t.equal((await call(url + '/metrics', { token: READER })).status, 403, 'metrics need admin')
  })

  t.test('write scope writes; admin does everything', async (t) => {
    const created = await call(url + '/images', { method: 'POST', token: WRITER, headers: json, body: JSON.stringify({ id: 'w/x', width: 1, height: 1, mode: 'L' }) })
    t.equal(created.status, 201)
    t.equal((await call(url + '/images/w%2Fx', { method: 'DELETE', token: ADMIN })).status, 204)
    t.equal((await call(url + '/metrics', { token: ADMIN })).status, 200)
  })

  t.test('id limits: a cam1/* token sees and touches only cam1/', async (t) => {
    const list = await call(url + '/images', { token: CAM1 })
    t.same(list.body.images.map((d: any) => d.id), ['cam1/a'], 'the list hides other namespaces')
    t.equal((await call(url + '/images/cam1%2Fa/data', { token: CAM1 })).status, 200)
    const existing = await call(url + '/images/cam2%2Fb', { token: CAM1 })
    const missing = await call(url + '/images/cam2%2Fnothing', { token: CAM1 })
    t.equal(existing.status, 403)
    t.same(existing.body, missing.body, 'the same 403 for an image that exists and one that does not')
    t.equal((await call(url + '/images/cam2%2Fb.png', { token: CAM1 })).status, 403, 'pictures too')
    t.equal((await call(url + '/images/cam2%2Fb', { method: 'DELETE', token: CAM1 })).status, 403)
    const elsewhere = await call(url + '/images', { method: 'POST', token: CAM1, headers: json, body: JSON.stringify({ id: 'cam2/c', width: 1, height: 1, mode: 'L' }) })
    t.equal(elsewhere.status, 403, 'cannot create outside its namespace')
    const unnamed = await call(url + '/images', { method: 'POST', token: CAM1, headers: json, body: JSON.stringify({ width: 1, height: 1, mode: 'L' }) })
    t.equal(unnamed.status, 403, 'must name what it creates')
    const raw = await call(url + '/images?id=cam2%2Fraw&shape=2&typestr=%7Cu1', { method: 'POST', token: CAM1, headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(2) })
    t.equal(raw.status, 403, 'raw uploads: the id in the query counts')
    const view = await call(url + '/images/cam1%2Fa/views', { method: 'POST', token: CAM1, headers: json, body: JSON.stringify({ id: 'cam2/view', x: 0, y: 0, width: 1, height: 1 }) })
    t.equal(view.status, 403, 'a view cannot be placed outside the namespace')
    const ok = await call(url + '/images', { method: 'POST', token: CAM1, headers: json, body: JSON.stringify({ id: 'cam1/c', width: 1, height: 1, mode: 'L' }) })
    t.equal(ok.status, 201)
    t.same(server.store.ids().sort(), ['cam1/a', 'cam1/c', 'cam2/b'], 'only the allowed create happened')
  })
})

t.test('without tokens on loopback, nothing asks for one', async (t) => {
  const { url } = await startServer(t)
  t.equal((await call(url + '/images')).status, 200)
  t.same((await call(url + '/healthz')).body, { ok: true, images: 0 })
})

t.test('CORS is off by default and configurable', async (t) => {
  const off = await startServer(t)
  const r = await fetch(off.url + '/images', { headers: { origin: 'https://evil.example' } })
  t.equal(r.headers.get('access-control-allow-origin'), null, 'no CORS headers by default')
  const pre = await fetch(off.url + '/images', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(pre.headers.get('access-control-allow-origin'), null, 'preflights get no allowance')

  const on = await startServer(t, { corsOrigins: ['https://app.example'], tokens })
  const allowed = await fetch(on.url + '/images', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
  t.equal(allowed.status, 204, 'preflight needs no token')
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example')
  t.match(allowed.headers.get('access-control-allow-headers'), /authorization/)
  const denied = await fetch(on.url + '/images', { headers: { origin: 'https://app.example' } })
  t.equal(denied.status, 401)
  t.equal(denied.headers.get('access-control-allow-origin'), 'https://app.example', 'a page can read even the 401')
  const other = await fetch(on.url + '/images', { headers: { origin: 'https://other.example', ...auth(READER) } })
  t.equal(other.headers.get('access-control-allow-origin'), null, 'other origins get nothing')
})
