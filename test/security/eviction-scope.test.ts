/**
 * Issue 12 item 5: with `--evict lru`, a token limited to `a/*` used to make room by evicting `b/*` images.
 * Eviction may only remove images the writer could delete itself; when those are not enough the answer
 * is 507 and nothing is evicted. Every create path is covered: HTTP JSON, raw and picture uploads, views,
 * WebSocket create and put.
 */
import t, { type Test } from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'
import { ADMIN, A_RW, call, JSON_BODY, RAW_BODY, TOKENS } from '../helpers/tokens.js'

// Four 64×64 L images fill the store.
const SMALL = { blockSize: 16384, capacity: 16384, evict: 'lru' as const, tokens: TOKENS }
const IMAGE = { width: 64, height: 64, mode: 'L' }

async function fullOfB (t: Test, extra: object = {}): Promise<Awaited<ReturnType<typeof startServer>>> {
  const started = await startServer(t, { ...SMALL, ...extra })
  for (let i = 0; i < 4; i++) started.server.store.create({ id: `b/${i}`, ...IMAGE })
  return started
}

const bIds = ['b/0', 'b/1', 'b/2', 'b/3']

t.test('an a/* token cannot evict b/* images: 507, nothing evicted', async (t) => {
  const { server, url } = await fullOfB(t)
  const evicted: string[] = []
  server.store.on('evicted', (d) => evicted.push(d.id))
  const json = await call(`${url}/images`, A_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/new', ...IMAGE }) })
  t.equal(json.status, 507, 'HTTP JSON create')
  t.equal(json.body.code, 'PXP_ERR_CAPACITY')
  const raw = await call(`${url}/images?id=a%2Fraw&width=64&height=64&mode=L`, A_RW, { method: 'POST', headers: RAW_BODY, body: new Uint8Array(4096) })
  t.equal(raw.status, 507, 'HTTP raw upload')
  const png = await (await fetch(`${url}/images/b%2F0.png`, { headers: { authorization: `Bearer ${ADMIN}` } })).arrayBuffer()
  const picture = await call(`${url}/images?id=a%2Fpic`, A_RW, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png })
  t.equal(picture.status, 507, 'HTTP picture upload')

  const c = await WireClient.connect(t, url)
  await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: A_RW })
  t.equal((await c.request({ op: 'create', id: 'a/ws', ...IMAGE })).code, 'PXP_ERR_CAPACITY', 'WebSocket create')
  t.equal((await c.request({ op: 'put', id: 'a/put', ...IMAGE, data: Buffer.alloc(4096) })).code, 'PXP_ERR_CAPACITY', 'WebSocket put')

  t.same(evicted, [], 'nothing was evicted')
  t.same(server.store.ids().sort(), bIds, 'every b/* image is still there')

  const admin = await call(`${url}/images`, ADMIN, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/admin', ...IMAGE }) })
  t.equal(admin.status, 201, 'an admin token may still make room')
  t.same(evicted, ['b/1'], 'by evicting the least recently used image (b/0 was just read as a PNG)')
})

t.test('an a/* token makes room from a/* images only', async (t) => {
  const { server, url } = await startServer(t, SMALL)
  server.store.create({ id: 'b/0', ...IMAGE })
  server.store.create({ id: 'a/old', ...IMAGE })
  server.store.create({ id: 'b/1', ...IMAGE })
  server.store.create({ id: 'b/2', ...IMAGE })
  const evicted: string[] = []
  server.store.on('evicted', (d) => evicted.push(d.id))
  const made = await call(`${url}/images`, A_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/new', ...IMAGE }) })
  t.equal(made.status, 201)
  t.same(evicted, ['a/old'], 'a/old went, though b/0 was used less recently')
  t.same(server.store.ids().sort(), ['a/new', 'b/0', 'b/1', 'b/2'])
})

t.test('views and the image-count limit follow the same rule', async (t) => {
  // Memory to spare: slots are what is short.
  const { server, url } = await startServer(t, { ...SMALL, capacity: 65536, maxImages: 5 })
  server.store.create({ id: 'a/base', width: 1, height: 1, mode: 'L' })
  for (let i = 0; i < 4; i++) server.store.create({ id: `b/${i}`, ...IMAGE })
  const evicted: string[] = []
  server.store.on('evicted', (d) => evicted.push(d.id))
  const view = await call(`${url}/images/${encodeURIComponent('a/base')}/views`, A_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/view', x: 0, y: 0, width: 1, height: 1 }) })
  t.equal(view.status, 507, 'no slot for a view without evicting b/*')
  t.equal(view.body.code, 'PXP_ERR_TOO_MANY_IMAGES')
  t.same(evicted, [])
  t.same(server.store.ids().sort(), ['a/base', ...bIds])
})
