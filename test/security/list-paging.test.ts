/**
 * `GET /images` and WebSocket `list` return pages (`limit`, opaque `cursor`, `next`), so one request
 * builds and sends a bounded number of descriptors: 20 concurrent lists of 8000 images used to stall
 * the event loop for seconds. Paging sees every image exactly once even while images are deleted
 * between pages, refuses hostile cursors and limits with PXP_ERR_VALIDATION, and the clients in the
 * repository follow the cursors.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { fetchList } from '../../client/remote/http.js'
import { jsonOf, RemoteClient } from '../../client/remote/index.js'
import { LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT } from '../../protocol/messages.js'
import { decodeCursor, encodeCursor, KEY_SEPARATOR } from '../../server/listing/cursor.js'
import type { ImageStore } from '../../server/store/image-store.js'
import { CLI, ROOT } from '../helpers/cli.js'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { WireClient, wsUrl } from '../helpers/wire-client.js'
import { until } from '../helpers/until.js'

const COUNT = 2500

function fill (store: ImageStore, count: number): string[] {
  const ids: string[] = []
  // Created out of id order, so creation order and id order differ.
  for (let i = 0; i < count; i++) {
    const id = `img/${String((i * 7919) % count).padStart(5, '0')}`
    store.create({ id, width: 1, height: 1, mode: 'L' })
    ids.push(id)
  }
  return ids
}

async function getJson (url: string): Promise<{ status: number, body: any }> {
  const res = await send(url, 'GET', url)
  return { status: res.status, body: jsonOf(res) }
}

interface PageLike { images: Array<{ id: string }>, next: string | null }

/**
 * Page through with `fetchPage`, deleting `deletePerPage` not-yet-seen images after each page. Checks
 * that every image never deleted is seen exactly once, in id order, and nothing deleted before its turn.
 */
async function pageThrough (t: Test, store: ImageStore, fetchPage: (cursor: string | null) => Promise<PageLike>, limit: number): Promise<void> {
  const seen: string[] = []
  const deletedAhead = new Set<string>()
  let cursor: string | null = null
  let pages = 0
  for (;;) {
    const page = await fetchPage(cursor)
    pages++
    t.ok(page.images.length <= limit, 'a page holds at most limit images')
    seen.push(...page.images.map((d) => d.id))
    if (page.next === null) break
    t.equal(page.images.length, limit, 'every page but the last is full')
    cursor = page.next
    // Delete the image the cursor names and some that are still to come.
    const last = seen[seen.length - 1]
    const ahead = store.ids().filter((id) => id > last).sort().filter((_, i) => i % 50 === 3)
    store.delete(last)
    for (const id of ahead.slice(0, 5)) {
      store.delete(id)
      deletedAhead.add(id)
    }
    if (pages > 100) throw new Error('paging does not end')
  }
  t.same(seen, [...seen].sort(), 'pages come in id order')
  t.equal(new Set(seen).size, seen.length, 'no image is seen twice')
  const remaining = store.ids()
  const missing = remaining.filter((id) => !seen.includes(id))
  t.same(missing, [], 'every image that was never deleted is seen')
  t.ok(deletedAhead.size > 0, 'images were deleted ahead of the cursor')
  t.same(seen.filter((id) => deletedAhead.has(id)), [], 'an image deleted before its page is not listed')
}

t.test('HTTP: pages, default size, cursors robust to deletes', async (t) => {
  const { server, url } = await startServer(t, { maxImages: 4096 })
  const ids = fill(server.store, COUNT)

  const first = await getJson(`${url}/images`)
  t.equal(first.status, 200)
  t.equal(first.body.images.length, LIST_DEFAULT_LIMIT, 'without limit: the first page of the default size')
  t.type(first.body.next, 'string', '... and a next cursor')
  t.same(first.body.images.map((d: { id: string }) => d.id), [...ids].sort().slice(0, LIST_DEFAULT_LIMIT))

  const all = await getJson(`${url}/images?limit=${LIST_MAX_LIMIT}`)
  t.equal(all.body.images.length, COUNT, 'limit up to the maximum')
  t.equal(all.body.next, null, 'the last page says so')

  await pageThrough(t, server.store, async (cursor) => {
    const r = await getJson(`${url}/images?limit=300${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    t.equal(r.status, 200)
    return r.body
  }, 300)
})

t.test('WebSocket: pages and cursors robust to deletes', async (t) => {
  const { server, url } = await startServer(t, { maxImages: 4096 })
  fill(server.store, COUNT)
  const c = await WireClient.connect(t, url)
  const first = await c.request({ op: 'list' })
  t.equal(first.images.length, LIST_DEFAULT_LIMIT)
  t.type(first.next, 'string')
  await pageThrough(t, server.store, async (cursor) => {
    const reply = await c.request({ op: 'list', limit: 400, ...(cursor === null ? {} : { cursor }) })
    t.equal(reply.op, 'images')
    return reply as unknown as PageLike
  }, 400)
  t.same(c.invalid, [], 'every reply matches the schema (with next)')
})

t.test('hostile cursors and limits are PXP_ERR_VALIDATION, never a crash', async (t) => {
  const { server, url } = await startServer(t)
  fill(server.store, 30)
  const c = await WireClient.connect(t, url)
  const real = (await c.request({ op: 'list', limit: 10 })).next as string
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url')
  const badCursors = [
    'x', '!!!!', '%00', b64('l'), b64('l../etc'), b64('limg//a'), b64('z' + 'img/00001'), b64('c' + 'img/00001'),
    b64('limg/00001') + '=', real + 'A', real.slice(0, -1) + '_', 'A'.repeat(600), b64('l' + 'a'.repeat(129)),
    b64('limg/00001\u0000node'), b64('l\uffff'), Buffer.from([0x6c, 0xff, 0xfe]).toString('base64url'),
  ]
  for (const cursor of badCursors) {
    const r = await getJson(`${url}/images?cursor=${encodeURIComponent(cursor)}`)
    t.equal(r.status, 400, `HTTP cursor ${JSON.stringify(cursor.slice(0, 40))}: 400`)
    t.equal(r.body.code, 'PXP_ERR_VALIDATION')
    const w = await c.request({ op: 'list', cursor })
    t.equal(w.code, 'PXP_ERR_VALIDATION', `WS cursor ${JSON.stringify(cursor.slice(0, 40))}: refused`)
  }
  // Limits outside 1..max are refused, not clamped.
  for (const limit of [0, -1, LIST_MAX_LIMIT + 1, 1e12, 2.5]) {
    const r = await getJson(`${url}/images?limit=${limit}`)
    t.equal(r.status, 400, `HTTP limit ${limit}: 400`)
    t.equal(r.body.code, 'PXP_ERR_VALIDATION')
    t.equal((await c.request({ op: 'list', limit })).code, 'PXP_ERR_VALIDATION', `WS limit ${limit}: refused`)
  }
  for (const q of ['limit=abc', 'cursor=', 'cursor=a&cursor=b']) {
    const r = await getJson(`${url}/images?${q}`)
    t.equal(r.status, 400, `HTTP ?${q}: 400`)
    t.equal(r.body.code, 'PXP_ERR_VALIDATION')
  }
  t.equal((await c.request({ op: 'list', cursor: 42 })).code, 'PXP_ERR_VALIDATION')
  t.equal((await c.request({ op: 'list', cursor: { toString: 1 } })).code, 'PXP_ERR_VALIDATION')
  // A cursor naming an image deleted since is fine: the next page starts after where it was.
  const page = await c.request({ op: 'list', limit: 10 })
  server.store.delete(page.images[9].id)
  const after = await c.request({ op: 'list', limit: 10, cursor: page.next })
  t.equal(after.images[0].id, 'img/00010')
  t.equal((await getJson(`${url}/images?limit=5`)).status, 200, 'server still up')
})

t.test('the repository\'s clients follow the cursors and see everything', async (t) => {
  const { server, url } = await startServer(t, { maxImages: 4096 })
  const ids = fill(server.store, COUNT)
  const remote = await RemoteClient.connect(wsUrl(url))
  t.teardown(() => remote.close())
  t.same((await remote.list()).map((d) => d.id), [...ids].sort(), 'RemoteClient.list() (the viewer uses it)')
  const page = await remote.listPage({ limit: 7 })
  t.equal(page.images.length, 7)
  t.type(page.next, 'string')
  t.same((await fetchList(url)).map((d) => d.id), [...ids].sort(), 'fetchList over HTTP')
})

t.test('a page is cut by bytes too: descriptors of lines images list every row', async (t) => {
  const chunkSize = 64 * 1024
  const { server, url } = await startServer(t, { chunkSize })
  // Each descriptor lists 1000 row segments: about 40 KiB of JSON.
  for (let i = 0; i < 12; i++) server.store.create({ id: `rows/${i}`, shape: [1000, 1], typestr: '|u1', layout: 'lines' })
  const c = await WireClient.connect(t, url)
  const sizes: number[] = []
  c.ws.on('message', (data: Buffer) => sizes.push(data.byteLength))
  const seen: string[] = []
  let cursor: string | undefined
  for (let pages = 0; ; pages++) {
    const reply = await c.request({ op: 'list', ...(cursor === undefined ? {} : { cursor }) })
    seen.push(...reply.images.map((d: { id: string }) => d.id))
    if (reply.next === null) break
    cursor = reply.next
    if (pages > 20) throw new Error('paging does not end')
  }
  t.equal(seen.length, 12, 'every image, over several pages')
  t.ok(Math.max(...sizes) <= chunkSize + 48, `no list reply is larger than chunkSize + 48 (largest ${Math.max(...sizes)})`)
  const http = await getJson(`${url}/images`)
  t.equal(http.body.images.length, 12, 'HTTP pages are larger (8 MiB), all fit here')
})

t.test('scope=cluster pages the whole cluster\'s listing in (id, node) order', async (t) => {
  const redis = await startRedis(t)
  const cluster = { redis: redis.url, heartbeatMs: 100, ttlMs: 1500 }
  const a = await startServer(t, { cluster: { ...cluster, nodeId: 'node-a' } })
  const b = await startServer(t, { cluster: { ...cluster, nodeId: 'node-b' } })
  for (let i = 0; i < 25; i++) a.server.store.create({ id: `a/${String(i).padStart(2, '0')}`, width: 1, height: 1, mode: 'L' })
  for (let i = 0; i < 25; i++) b.server.store.create({ id: `b/${String(i).padStart(2, '0')}`, width: 1, height: 1, mode: 'L' })
  const pageAll = async (cursorOf: (cursor: string | null) => Promise<PageLike & { partial?: boolean }>): Promise<string[]> => {
    const seen: string[] = []
    let cursor: string | null = null
    for (let pages = 0; ; pages++) {
      const page = await cursorOf(cursor)
      t.notOk(page.partial, 'the catalog was reachable')
      seen.push(...page.images.map((d) => d.id))
      if (page.next === null) return seen
      cursor = page.next
      if (pages > 50) throw new Error('paging does not end')
    }
  }
  // The catalog is eventually consistent: wait until node A lists all 50.
  await until(async () => (await getJson(`${a.url}/images?scope=cluster&limit=100`)).body.images.length >= 50, { what: 'node B\'s images to reach node A\'s listing', interval: 25 })
  const http = await pageAll(async (cursor) => (await getJson(`${a.url}/images?scope=cluster&limit=7${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)).body)
  t.equal(http.length, 50, 'HTTP: every image of both nodes, once')
  t.same(http, [...http].sort())
  const c = await WireClient.connect(t, a.url)
  const ws = await pageAll(async (cursor) => await c.request({ op: 'list', scope: 'cluster', limit: 9, ...(cursor === null ? {} : { cursor }) }) as unknown as PageLike)
  t.same(ws, http, 'WebSocket: the same')
  // A local cursor is not a cluster cursor.
  const local = (await getJson(`${a.url}/images?limit=1`)).body.next as string
  const wrong = await getJson(`${a.url}/images?scope=cluster&cursor=${local}`)
  t.equal(wrong.body.code, 'PXP_ERR_VALIDATION')
  t.same(c.invalid, [])
})

t.test('any string as a cursor decodes to a key or is PXP_ERR_VALIDATION; our cursors round-trip', async (t) => {
  const fc = (await import('fast-check')).default
  for (const scope of ['local', 'cluster'] as const) {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 700 }), fc.base64String({ maxLength: 600 }), fc.string({ unit: 'binary', maxLength: 100 })), (text) => {
      try {
        decodeCursor(scope, text)
        return true
      } catch (err) {
        return (err as { code?: string }).code === 'PXP_ERR_VALIDATION'
      }
    }), { seed: 0x5eed, numRuns: 3000 })
  }
  for (const id of ['a', 'img/00001', 'x'.repeat(128), 'a/b/c.d_e-f']) {
    t.equal(decodeCursor('local', encodeCursor('local', id)), id)
    const key = `${id}${KEY_SEPARATOR}node-1`
    t.equal(decodeCursor('cluster', encodeCursor('cluster', key)), key)
  }
})

t.test('pixelport ls follows the pages', async (t) => {
  const { server, url } = await startServer(t, { maxImages: 4096 })
  const ids = fill(server.store, LIST_DEFAULT_LIMIT + 250)
  const child = spawn(process.execPath, [CLI, 'ls', '--json'], { cwd: ROOT, env: { ...process.env, PIXELPORT_URL: url, PIXELPORT_TOKEN: '' }, stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(code, 0)
  t.same((JSON.parse(stdout) as { images: Array<{ id: string }> }).images.map((d) => d.id), [...ids].sort(), 'every image, beyond the first page')
})
