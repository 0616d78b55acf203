/**
 * Issue 12 item 5: a view `a/v` of `b/secret` must not hand an `a/*` token `b/secret`'s pixels. Reaching a
 * view needs the scope on its base too — on HTTP (descriptor, data, pictures, PUT, views of views) and on
 * the WebSocket (describe, get, put, subscribe, list, events) — and creating a view needs `read` on the
 * base. Deleting a view touches no pixel: the view's own id is enough.
 */
import t, { type Test } from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import type { ServerOptions } from '../../server/options.js'
import { until } from '../helpers/until.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'
import { ADMIN, AB_RW, A_RW, call, JSON_BODY, RAW_BODY, TOKENS } from '../helpers/tokens.js'

const SECRET = new Uint8Array(16).fill(42)

async function setup (t: Test): Promise<{ url: string, server: Awaited<ReturnType<typeof startServer>>['server'] }> {
  const { server, url } = await startServer(t, { tokens: TOKENS })
  server.store.create({ id: 'b/secret', width: 4, height: 4, mode: 'L' }, SECRET)
  // Made by someone allowed to (the admin, a worker): the view sits in a/'s namespace.
  server.store.createView('b/secret', { id: 'a/v', x: 0, y: 0, width: 4, height: 4 })
  server.store.createView('a/v', { id: 'a/vv', x: 1, y: 1, width: 2, height: 2 })
  server.store.create({ id: 'a/own', width: 4, height: 4, mode: 'L' })
  return { server, url }
}

const enc = encodeURIComponent

t.test('HTTP: a view of an image outside the token\'s ids is refused', async (t) => {
  const { server, url } = await setup(t)
  for (const id of ['a/v', 'a/vv']) {
    for (const path of [`/images/${enc(id)}`, `/images/${enc(id)}/data`, `/images/${enc(id)}.png`]) {
      const r = await call(url + path, A_RW)
      t.equal(r.status, 403, `GET ${path}`)
      t.equal(r.body.code, 'PXP_ERR_FORBIDDEN')
    }
    const picture = await call(`${url}/images/${enc(id)}`, A_RW, { headers: { accept: 'image/png' } })
    t.equal(picture.status, 403, `GET ${id} as a picture`)
    const put = await call(`${url}/images/${enc(id)}/data`, A_RW, { method: 'PUT', headers: RAW_BODY, body: new Uint8Array(id === 'a/v' ? 16 : 4).fill(1) })
    t.equal(put.status, 403, `PUT ${id}/data`)
    const view = await call(`${url}/images/${enc(id)}/views`, A_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/w', x: 0, y: 0, width: 1, height: 1 }) })
    t.equal(view.status, 403, `a view of ${id}`)
  }
  const direct = await call(`${url}/images/${enc('b/secret')}/views`, A_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/w', x: 0, y: 0, width: 1, height: 1 }) })
  t.equal(direct.status, 403, 'creating a view of b/secret under a/ needs read on b/secret')
  t.same([...(await server.store.read('b/secret')).bytes], [...SECRET], 'b/secret is unchanged')
  t.notOk(server.store.has('a/w'))
  const list = await call(`${url}/images`, A_RW)
  t.same(list.body.images.map((d: { id: string }) => d.id), ['a/own'], 'the list shows no view of b/secret')
  const gone = await call(`${url}/images/${enc('a/vv')}`, A_RW, { method: 'DELETE' })
  t.equal(gone.status, 204, 'deleting a view in the token\'s namespace touches no pixel: allowed')
  t.ok(server.store.has('b/secret'))
})

t.test('HTTP: with scope on the base too, views work as before', async (t) => {
  const { server, url } = await setup(t)
  const d = await call(`${url}/images/${enc('a/v')}`, AB_RW)
  t.equal(d.status, 200)
  t.equal(d.body.base, 'b/secret')
  const data = await fetch(`${url}/images/${enc('a/v')}/data`, { headers: { authorization: `Bearer ${AB_RW}` } })
  t.same([...new Uint8Array(await data.arrayBuffer())], [...SECRET])
  const view = await call(`${url}/images/${enc('b/secret')}/views`, AB_RW, { method: 'POST', headers: JSON_BODY, body: JSON.stringify({ id: 'a/w', x: 0, y: 0, width: 2, height: 2 }) })
  t.equal(view.status, 201, 'a view of b/secret under a/ with read on b/*')
  const put = await call(`${url}/images/${enc('a/w')}/data`, AB_RW, { method: 'PUT', headers: RAW_BODY, body: new Uint8Array(4).fill(5) })
  t.equal(put.status, 200, 'and writing through it with write on b/*')
  t.equal((await server.store.read('b/secret')).bytes[0], 5)
})

t.test('WebSocket: the same rule', async (t) => {
  const { server, url } = await setup(t)
  const c = await WireClient.connect(t, url)
  t.equal((await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: A_RW })).op, 'welcome')
  for (const msg of [
    { op: 'describe', id: 'a/v' },
    { op: 'get', id: 'a/v' },
    { op: 'get', id: 'a/vv' },
    { op: 'put', id: 'a/v', data: Buffer.alloc(16, 1) },
    { op: 'subscribe', ids: ['a/v'], data: true },
  ]) {
    const r = await c.request(msg)
    t.equal(r.code, 'PXP_ERR_FORBIDDEN', `${msg.op} ${JSON.stringify(msg.id ?? msg.ids)}`)
  }
  t.same([...(await server.store.read('b/secret')).bytes], [...SECRET], 'b/secret is unchanged')
  const list = await c.request({ op: 'list' })
  t.same(list.images.map((d: { id: string }) => d.id), ['a/own'], 'list shows no view of b/secret')

  // Events: a new view of b/secret in a/ is not announced; an image of a/'s own is.
  const sub = await c.request({ op: 'subscribe', policy: 'all' })
  t.equal(sub.op, 'subscribed')
  server.store.createView('b/secret', { id: 'a/hidden', x: 0, y: 0, width: 1, height: 1 })
  server.store.create({ id: 'a/shown', width: 1, height: 1, mode: 'L' })
  const event = await c.next((m) => m.op === 'event')
  t.equal(event.descriptor?.id ?? event.id, 'a/shown', 'the first event is for a/shown, not the view of b/secret')

  const ok = await WireClient.connect(t, url)
  await ok.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: AB_RW })
  t.equal((await ok.request({ op: 'describe', id: 'a/v' })).op, 'descriptor', 'with scope on b/* the view is readable')
})

t.test('cluster: a view another node owns needs the scope on its base at the node that forwards', async (t) => {
  const redis = await startRedis(t)
  const cluster = (nodeId: string): ServerOptions => ({ tokens: TOKENS, cluster: { redis: redis.url, nodeId, token: ADMIN, heartbeatMs: 100, ttlMs: 1500 } })
  const owner = await startServer(t, cluster('owner'))
  const other = await startServer(t, cluster('other'))
  owner.server.store.create({ id: 'b/secret', width: 4, height: 4, mode: 'L' }, SECRET)
  owner.server.store.createView('b/secret', { id: 'a/v', x: 0, y: 0, width: 4, height: 4 })
  await until(async () => (await call(`${other.url}/images/${enc('a/v')}`, AB_RW)).status === 200, { what: 'the other node to find a/v', timeout: 10_000 })
  for (const path of [`/images/${enc('a/v')}`, `/images/${enc('a/v')}/data`]) {
    const r = await call(other.url + path, A_RW)
    t.equal(r.status, 403, `GET ${path} through the other node`)
  }
  const put = await call(`${other.url}/images/${enc('a/v')}/data`, A_RW, { method: 'PUT', headers: RAW_BODY, body: new Uint8Array(16).fill(1) })
  t.equal(put.status, 403, 'PUT through the other node')
  t.same([...(await owner.server.store.read('b/secret')).bytes], [...SECRET], 'b/secret is unchanged')
  const data = await fetch(`${other.url}/images/${enc('a/v')}/data`, { headers: { authorization: `Bearer ${AB_RW}` } })
  t.same([...new Uint8Array(await data.arrayBuffer())], [...SECRET], 'with scope on b/* it is forwarded as before')
  const c = await WireClient.connect(t, other.url)
  await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: A_RW })
  t.equal((await c.request({ op: 'describe', id: 'a/v' })).code, 'PXP_ERR_FORBIDDEN', 'WebSocket describe through the other node')
  const listed = await c.request({ op: 'list', scope: 'cluster' })
  t.same(listed.images.map((d: { id: string }) => d.id), [], 'the cluster list hides it')
})
