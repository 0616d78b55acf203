/**
 * Fuzzing every HTTP route of a real server: the routes are read from fastify's own table
 * (`printRoutes`), then requested with random methods, ids (valid, missing, hostile, badly encoded), query
 * strings, content types, bodies (random bytes, random JSON, plausible specs, picture headers), Range and
 * conditional headers, huge declared Content-Lengths, and clients that vanish mid-upload.
 *
 * Every answer must be a success or `{ code, message }` with a registry code whose status is the response's
 * status, never PXP_ERR_INTERNAL; afterwards the server still serves, the store is consistent, and once the
 * images are deleted nothing is left: memory, snapshots, staging.
 */
import http from 'node:http'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { fuzzSettings } from '../helpers/fuzz.js'
import { startServer } from '../helpers/server.js'
import { checkConsistent, checkNoLeaks, FUZZ_SERVER_OPTIONS, isRegistryStatus, seedImages } from '../helpers/invariants.js'
import { rawExchange } from '../helpers/http.js'

interface Route { path: string, methods: string[] }

/** Every route with its methods, from fastify's route tree (`printRoutes({ commonPrefix: false })`). */
export function routesOf (app: FastifyInstance): Route[] {
  const routes: Route[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([^)]*)\))?$/.exec(line)
    if (m === null) continue
    stack.length = m[1].length / 4
    stack.push(m[2])
    if (m[3] !== undefined) routes.push({ path: stack.join(''), methods: m[3].split(',').map((s) => s.trim()) })
  }
  return routes
}

interface Sent {
  method: string
  path: string
  headers: Record<string, string>
  body?: Uint8Array
  /** 'huge': declare a Content-Length far past every limit and send a little; 'vanish': go away mid-body. */
  fault: 'none' | 'huge' | 'vanish'
}

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

/** One request through node:http (fetch cannot lie about Content-Length). Status -1: no answer in time. */
async function send (url: string, r: Sent): Promise<Answer | null> {
  const headers = { ...r.headers }
  // Always a declared length: without one node:http sends a GET's or DELETE's body unframed (the server
  // reads it as the next request), and a PUT's chunked, where an unfinished body is just a slow client.
  if (r.fault === 'huge') headers['content-length'] = String(2 ** 40)
  else if (r.fault === 'vanish') headers['content-length'] = String((r.body?.byteLength ?? 16) + 4096)
  else if (r.body !== undefined) headers['content-length'] = String(r.body.byteLength)
  return await new Promise((resolve) => {
    const req = http.request(url + r.path, { method: r.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.setTimeout(8000, () => {
      req.destroy()
      resolve({ status: -1, headers: {}, body: Buffer.alloc(0) })
    })
    req.on('error', () => resolve(null))
    if (r.fault === 'vanish') {
      // Part of a declared body, then gone: whatever the server reserved for it must come back.
      req.write(r.body ?? Buffer.alloc(16))
      setTimeout(() => { req.destroy(); resolve(null) }, 5)
      return
    }
    if (r.body !== undefined) req.write(r.body)
    if (r.fault === 'huge') req.flushHeaders()
    else req.end()
  })
}

const IDS = ['seed/l', 'seed/rgb', 'seed/f4', 'seed/frames', 'seed/lines', 'seed/l/v', 'fz/a', 'fz/b', 'missing']
/** Path pieces that are not ids: traversal, bad percent-encoding, NUL, over-long, empty. */
const RAW_ID_PIECES = ['..', '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '%', '%zz', '%00', '%C0%AF', 'a%2F%2Fb', '%2Fabs', 'a'.repeat(600),
  '%E2%80%8B', '.hidden', 'seed%2Fl%2F..', '%FF%FE', 'a%5Cb', '*', '%20', 'a%5c..%5c..%5cx', '../../../etc/passwd', '%E0%A4%A']
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
const CONTENT_TYPES = ['application/json', 'application/octet-stream', 'text/plain', 'image/png', 'image/jpeg', 'image/tiff',
  'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', ';;;', 'APPLICATION/JSON', 'application/json; charset=utf-8']
const QUERIES = ['', '', '?width=4&height=4&mode=L', '?shape=4,4&typestr=|u1', '?shape=16,16&typestr=%7Cu1&id=fz/a', '?shape=99999999999,1&typestr=|u1',
  '?shape=4,4,4,4,4&typestr=|u1', '?mode=RGB&width=8&height=8&layout=lines', '?scope=cluster', '?scope=x', '?a=1&a=2', '?width[]=1', '?id=..%2Fx',
  '?' + 'x=1&'.repeat(500), '?%', '?frames=9&mode=L&width=2&height=2', '?readonly=maybe']
const RANGES = ['bytes=0-0', 'bytes=-0', 'bytes=5-1', 'bytes=0-99999999999999999999', 'bytes=1-2,3-4', 'items=0-1', 'bytes=--1', 'bytes=-99999', 'bytes=', 'bytes=255-']
const ACCEPTS = ['image/png', '*/*', 'image/*;q=0', 'image/webp', 'application/json', 'text/html', ',,,', 'image/tiff;q=2']

/** A JSON body: random JSON, or a plausible create / view body with some field off. */
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({
    width: fc.oneof(fc.integer({ min: -1, max: 70 }), fc.constant('4')),
    height: fc.integer({ min: 0, max: 70 }),
    mode: fc.constantFrom('L', 'RGB', 'XYZ'),
    id: fc.constantFrom(...IDS, '..', 'a//b'),
    x: fc.integer({ min: -1, max: 20 }),
    y: fc.integer({ min: 0, max: 20 }),
    layout: fc.constantFrom('block', 'lines', 'x'),
    frames: fc.integer({ min: 0, max: 9 }),
  }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"width":4,', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '[]', 'null', '"', '{}', '\u0000',
    '[' + '['.repeat(10_000) + ']'.repeat(10_000) + ']'),
)

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: jsonBody.map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  { weight: 1, arbitrary: fc.constantFrom(16, 64, 192, 256, 1024, 4096).map((n) => Buffer.alloc(n, 7)) },
  // Picture signatures followed by garbage: PNG, JPEG, TIFF, WebP.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('89504e470d0a1a0a0000000d49484452', 'ffd8ffe0', '49492a00', '52494646000000005745425056503820'), fc.uint8Array({ maxLength: 256 }))
    .map(([hex, tail]) => Buffer.concat([Buffer.from(hex, 'hex'), tail])) },
)

function request (routes: Route[]): fc.Arbitrary<Sent> {
  const path = fc.tuple(fc.constantFrom(...routes), fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...IDS).map(encodeURIComponent) },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_ID_PIECES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map(encodeURIComponent) },
  )).map(([route, id]) => ({ route, path: route.path.replace(/:[A-Za-z]+|\*/g, id) }))
  const rawPath = fc.constantFrom('/images/%', '//images', '/images/a/b/c/d', '/images/', '/%2e%2e/stats', '/images/seed%2Fl/data/extra', '/nope',
    '/images/seed%2Fl/views/x', '/' + 'x'.repeat(5000), '/docs/static/a%5c..%5c..%5cx', '/docs/static/../../../etc/passwd', '/docs/static/%00')
  return fc.record({
    target: fc.oneof({ weight: 9, arbitrary: path }, { weight: 1, arbitrary: rawPath.map((p) => ({ route: { path: p, methods: ['GET'] }, path: p })) }),
    method: fc.oneof({ weight: 3, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    query: fc.constantFrom(...QUERIES),
    contentType: fc.option(fc.constantFrom(...CONTENT_TYPES)),
    range: fc.option(fc.constantFrom(...RANGES), { freq: 4 }),
    accept: fc.option(fc.constantFrom(...ACCEPTS), { freq: 4 }),
    ifNoneMatch: fc.option(fc.constantFrom('"0"', '*', 'W/"1"', '"', ''), { freq: 6 }),
    body,
    fault: fc.constantFrom<Sent['fault']>('none', 'none', 'none', 'none', 'none', 'none', 'huge', 'vanish'),
  }).map((r): Sent => {
    const route = r.target.route
    const method = typeof r.method === 'string' ? r.method : route.methods[r.method % route.methods.length]
    const headers: Record<string, string> = {}
    if (r.contentType !== null) headers['content-type'] = r.contentType
    if (r.range !== null) headers.range = r.range
    if (r.accept !== null) headers.accept = r.accept
    if (r.ifNoneMatch !== null) headers['if-none-match'] = r.ifNoneMatch
    return { method, path: r.target.path + r.query, headers, body: r.body, fault: r.fault }
  })
}

const someId = fc.constantFrom(...IDS, 'fz/c', 'fz/d')
const octet = { 'content-type': 'application/octet-stream' }
const json = { 'content-type': 'application/json' }

/** Requests that mostly get through validation, to reach the store: creates, uploads, overwrites, views, deletes. */
const plausible: fc.Arbitrary<Sent> = fc.oneof(
  fc.record({ id: someId, width: fc.integer({ min: 1, max: 300 }), height: fc.integer({ min: 1, max: 300 }), mode: fc.constantFrom('L', 'RGB', 'RGBA', 'F'), layout: fc.constantFrom('block', 'lines'), frames: fc.integer({ min: 1, max: 3 }), readonly: fc.boolean() }, { requiredKeys: ['width', 'height', 'mode'] })
    .map((b): Sent => ({ method: 'POST', path: '/images', headers: json, body: Buffer.from(JSON.stringify(b)), fault: 'none' })),
  fc.record({ id: someId, h: fc.integer({ min: 1, max: 64 }), w: fc.integer({ min: 1, max: 64 }), delta: fc.constantFrom(0, 0, 0, -1, 1), fault: fc.constantFrom<Sent['fault']>('none', 'none', 'none', 'vanish') })
    .map(({ id, h, w, delta, fault }): Sent => ({ method: 'POST', path: `/images?shape=${h},${w}&typestr=%7Cu1&id=${encodeURIComponent(id)}`, headers: octet, body: Buffer.alloc(Math.max(0, h * w + delta), 5), fault })),
  fc.record({ id: someId, n: fc.constantFrom(256, 192, 64, 256, 255, 1024), fault: fc.constantFrom<Sent['fault']>('none', 'none', 'none', 'vanish', 'huge') })
    .map(({ id, n, fault }): Sent => ({ method: 'PUT', path: `/images/${encodeURIComponent(id)}/data`, headers: octet, body: Buffer.alloc(n, 9), fault })),
  fc.record({ id: someId, view: someId, x: fc.integer({ min: -1, max: 10 }), y: fc.nat(10), width: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 12 }) })
    .map(({ id, view, ...rect }): Sent => ({ method: 'POST', path: `/images/${encodeURIComponent(id)}/views`, headers: json, body: Buffer.from(JSON.stringify({ ...rect, id: view + '/v' })), fault: 'none' })),
  someId.map((id): Sent => ({ method: 'DELETE', path: `/images/${encodeURIComponent(id)}`, headers: {}, fault: 'none' })),
  fc.tuple(someId, fc.constantFrom(...RANGES), fc.constantFrom('/data', '.png', '.tiff', '')).map(([id, range, what]): Sent => ({ method: 'GET', path: `/images/${encodeURIComponent(id)}${what}`, headers: { range }, fault: 'none' })),
)

function parseJson (text: string): { code?: unknown, message?: unknown } | null {
  try {
    return JSON.parse(text) as { code?: unknown, message?: unknown }
  } catch {
    return null
  }
}

/** The answer is a success, or the registry's `{ code, message }` with the registry's status for the code. */
function checkAnswer (t: Test, r: Sent, a: Answer, tally: Map<string, number>): void {
  const what = `${r.method} ${r.path.slice(0, 80)} ${JSON.stringify(r.headers).slice(0, 120)} (${r.body?.byteLength ?? 0} bytes${r.fault !== 'none' ? ', ' + r.fault : ''})`
  if (a.status === -1) {
    t.fail(`no answer within 8 s: ${what}`)
    return
  }
  if (a.status < 400) {
    tally.set(String(a.status), (tally.get(String(a.status)) ?? 0) + 1)
    return
  }
  if (r.method === 'HEAD') {
    tally.set(`HEAD ${a.status}`, (tally.get(`HEAD ${a.status}`) ?? 0) + 1)
    return
  }
  const parsed = parseJson(a.body.toString())
  const code = parsed?.code
  tally.set(`${a.status} ${String(code)}`, (tally.get(`${a.status} ${String(code)}`) ?? 0) + 1)
  if (parsed === null || typeof parsed.message !== 'string' || !isRegistryStatus(code, a.status)) {
    t.fail(`${a.status} ${a.body.toString().slice(0, 200)} — not a registry error with its status: ${what}`)
  } else if (code === 'PXP_ERR_INTERNAL') {
    t.fail(`internal error: ${String(parsed.message)}: ${what}`)
  }
}

t.test('HTTP fuzz: every route answers with success or a registry error, then no crash, no leak', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const { server, url } = await startServer(t, FUZZ_SERVER_OPTIONS)
  const { store } = server
  seedImages(server)

  // A plain GET of the WebSocket endpoint is 426 PXP_ERR_UPGRADE_REQUIRED, so it is fuzzed like any route.
  const routes = routesOf(server.app)
  t.ok(routes.some((r) => r.path === '/images/:id/data' && r.methods.includes('PUT')), `${routes.length} routes from the route table`)
  t.comment(routes.map((r) => `${r.methods.join(',')} ${r.path}`).join('; '))

  const tally = new Map<string, number>()
  await fc.assert(fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: request(routes) }, { weight: 2, arbitrary: plausible }), async (r) => {
    const answer = await send(url, r)
    if (answer !== null) checkAnswer(t, r, answer, tally)
  }), { seed, numRuns: runs(500) })
  t.comment([...tally].sort().map(([k, n]) => `${k} ×${n}`).join(', '))
  t.ok([...tally.keys()].filter((k) => k.includes('PXP_ERR')).length >= 8, 'the fuzzer reached many kinds of error')

  await checkConsistent(t, server, url)
  await checkNoLeaks(t, server)
})


t.test('requests the HTTP parser refuses are answered with a registry error', async (t) => {
  const { server, url } = await startServer(t, FUZZ_SERVER_OPTIONS)
  for (const raw of ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 'GET / HTTP/1.1\r\n' + 'X: y\r\n'.repeat(20_000) + '\r\n']) {
    const answer = await rawExchange(url, raw, 2000)
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1])
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
    let code: unknown
    try { code = (JSON.parse(body) as { code?: unknown }).code } catch {}
    t.ok(isRegistryStatus(code, status), `${JSON.stringify(raw.slice(0, 30))} → ${status} ${body.slice(0, 80)}`)
  }
  t.equal((await fetch(url + '/healthz')).status, 200)
  t.ok(server)
})

t.test('a plain GET of /ws (no upgrade) is answered with a registry error', async (t) => {
  const { url } = await startServer(t, FUZZ_SERVER_OPTIONS)
  const res = await fetch(url + '/ws')
  const text = await res.text()
  let code: unknown
  try { code = (JSON.parse(text) as { code?: unknown }).code } catch {}
  t.ok(isRegistryStatus(code, res.status), `${res.status} ${JSON.stringify(text)}`)
})
