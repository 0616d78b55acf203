/**
 * Eviction end to end: a real server, real HTTP requests, a real WebSocket subscriber, and a real worker
 * thread holding an image open. Off by default (507, nothing changes); with `evict: 'lru'` the least recently
 * used image nobody holds goes, subscribers hear `deleted` (with `evicted: true`), and metrics count it.
 */
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'
import { call, download } from '../helpers/http.js'

const KiB = 1024
/** Room for four 64 KiB images. */
const SMALL = { blockSize: 64 * KiB, capacity: 256 * KiB }
const image = (id: string): object => ({ shape: [256, 256], typestr: '|u1', id })

async function ids (url: string): Promise<string[]> {
  const res = await call(url, 'GET', '/images')
  return (res.body.images as Array<{ id: string }>).map((d) => d.id).sort()
}

t.test('off by default: a full store answers 507 and keeps every image', async (t) => {
  const { url } = await startServer(t, SMALL)
  for (const id of ['a', 'b', 'c', 'd']) t.equal((await call(url, 'POST', '/images', image(id))).status, 201)
  const refused = await call(url, 'POST', '/images', image('e'))
  t.equal(refused.status, 507)
  t.equal(refused.body.code, 'PXP_ERR_CAPACITY')
  t.same(await ids(url), ['a', 'b', 'c', 'd'])
})

t.test('lru: the least recently used image nobody holds goes; an open one stays', async (t) => {
  const { url, server } = await startServer(t, { ...SMALL, evict: 'lru' })
  for (const id of ['a', 'b', 'c', 'd']) t.equal((await call(url, 'POST', '/images', image(id))).status, 201)
  // a, the oldest, is held open by a worker thread (a lease in shared memory, no message per read).
  const agent = await startAgent(server)
  t.teardown(() => server.workers.close())
  await agent.call('open', 'a')
  // b is read over HTTP: now the most recently used.
  t.equal((await download(url, 'b')).status, 200)
  const ws = await WireClient.connect(t, url)
  const { sub } = await ws.request({ op: 'subscribe', ids: ['c', 'd'] })

  const created = await call(url, 'POST', '/images', image('e'))
  t.equal(created.status, 201, 'room was made')
  t.same(await ids(url), ['a', 'b', 'd', 'e'], 'c went: a is open in a worker, b was read')
  t.equal((await call(url, 'GET', '/images/c')).status, 404)
  const event = await ws.next((m) => m.op === 'event' && m.sub === sub)
  t.match(event, { type: 'deleted', id: 'c', descriptor: { id: 'c', evicted: true } }, 'the subscriber hears it was evicted')
  t.same(ws.invalid, [])
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /^pixelport_evictions_total 1$/m)
  t.match(metrics, /^pixelport_images_deleted_total 1$/m)
  t.equal((await agent.call('read', 'a')).bytes.length, 64 * KiB, 'the worker still reads its image')

  // Released, a counts as used when the store last saw it held (making room for e): d is older now.
  await agent.call('release', 'a')
  t.equal((await call(url, 'POST', '/images', image('f'))).status, 201)
  t.same(await ids(url), ['a', 'b', 'e', 'f'])
  t.match(await ws.next((m) => m.op === 'event' && m.sub === sub), { type: 'deleted', id: 'd', descriptor: { evicted: true } })

  // Everything held or too big for what could go: 507, nothing evicted.
  for (const id of ['a', 'b', 'e', 'f']) await agent.call('open', id)
  const refused = await call(url, 'POST', '/images', image('g'))
  t.equal(refused.status, 507)
  t.equal(refused.body.code, 'PXP_ERR_CAPACITY')
  t.same(await ids(url), ['a', 'b', 'e', 'f'])
})
