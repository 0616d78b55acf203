/**
 * `?redirect=1` / `Prefer: redirect` on a read of another node's image (server/cluster/redirect.ts): a 307
 * to the owner's advertised origin, only when the owner takes the same client tokens; never to a host the
 * client names; a node whose peer has other tokens forwards instead.
 */
import t, { type Test } from 'tap'
import { authDigest, signRegistration, verifyRegistration } from '../../server/cluster/registration.js'
import { prefers } from '../../protocol/http-headers.js'
import { withoutRedirectParam } from '../../server/cluster/target.js'
import type { ServerOptions } from '../../server/options.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { startServer, type Started } from '../helpers/server.js'
import { until } from '../helpers/until.js'
import { rawExchange } from '../helpers/http.js'

const CLUSTER_TOKEN = 'cluster-secret-0123456789abcdef'
const READER = 'reader-token-0123456789abcdef'
const TOKENS: NonNullable<ServerOptions['tokens']> = [
  { token: CLUSTER_TOKEN, scopes: ['admin'], name: 'cluster' },
  { token: READER, scopes: ['read'], name: 'reader' },
]
const AUTH = { authorization: `Bearer ${READER}` }

async function node (t: Test, redis: TestRedis, nodeId: string, tokens = TOKENS): Promise<Started> {
  return await startServer(t, { tokens, cluster: { redis: redis.url, nodeId, token: CLUSTER_TOKEN, heartbeatMs: 100, ttlMs: 1500 } })
}

/** Until `b` knows `owner` as a live peer that owns `id`. */
async function knows (b: Started, id: string, owner: string): Promise<void> {
  await until(async () => {
    const entry = await b.server.cluster!.locate(id)
    return entry !== null && entry.node === owner && b.server.cluster!.isLivePeer(entry)
  }, { what: `${b.url} knows ${owner} owns ${id}`, interval: 25 })
}


t.test('a read asking for a redirect gets 307 to the owner, and the token opens it there', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'a/img', width: 4, height: 2, mode: 'L' }, new Uint8Array(8).fill(7))
  b.server.store.create({ id: 'b/img', width: 2, height: 2, mode: 'L' })
  await knows(b, 'a/img', 'node-a')

  const res = await fetch(`${b.url}/images/a%2Fimg/data?redirect=1`, { headers: AUTH, redirect: 'manual' })
  t.equal(res.status, 307)
  t.equal(res.headers.get('location'), `${a.url}/images/a%2Fimg/data`, 'the owner\'s URL, without the redirect parameter')
  t.equal(res.headers.get('x-pixelport-node'), 'node-a')
  t.equal(res.headers.get('cache-control'), 'no-store')

  const preferred = await fetch(`${b.url}/images/a%2Fimg.png?width=2`, { headers: { ...AUTH, prefer: 'respond-async, redirect' }, redirect: 'manual' })
  t.equal(preferred.status, 307, 'Prefer: redirect works too, on a picture route with its own query')
  t.equal(preferred.headers.get('location'), `${a.url}/images/a%2Fimg.png?width=2`, 'the rest of the query is kept')
  t.equal(preferred.headers.get('preference-applied'), 'redirect')

  // (fetch() drops Authorization when it follows a redirect to another origin: a client re-sends it.)
  const followed = await fetch(res.headers.get('location')!, { headers: AUTH })
  t.equal(followed.status, 200, 'the same token reads the image at the owner')
  t.same(new Uint8Array(await followed.arrayBuffer()), new Uint8Array(8).fill(7))

  // Not asked, or asked for something else: forwarded as before.
  const forwarded = await fetch(`${b.url}/images/a%2Fimg/data?redirect=0`, { headers: AUTH, redirect: 'manual' })
  t.equal(forwarded.status, 200, 'redirect=0 is forwarded')
  t.equal(forwarded.headers.get('x-pixelport-node'), 'node-a')
  await forwarded.arrayBuffer()
  // A local image, or a write, is never redirected; the parameter is accepted and ignored.
  t.equal((await fetch(`${b.url}/images/b%2Fimg/data?redirect=1`, { headers: AUTH, redirect: 'manual' })).status, 200, 'a local image is served here')
  t.equal((await fetch(`${b.url}/images/b%2Fimg.png?redirect=1`, { headers: AUTH, redirect: 'manual' })).status, 200, 'also on a route with a strict query schema')
  const write = await fetch(`${b.url}/images/a%2Fimg/data?redirect=1`, { method: 'PUT', headers: { authorization: `Bearer ${CLUSTER_TOKEN}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(8), redirect: 'manual' })
  t.equal(write.status, 200, 'a write is forwarded, not redirected')
})

t.test('a hostile client cannot make the node redirect anywhere but the owner\'s advertised origin', async (t) => {
  const redis = await startRedis(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'a/img', width: 4, height: 2, mode: 'L' })
  await knows(b, 'a/img', 'node-a')
  const host = new URL(b.url).host
  const auth = `Authorization: Bearer ${READER}\r\nConnection: close\r\n`

  // Absolute-form and scheme-relative targets: refused before any redirect is considered.
  for (const target of ['http://evil.example/images/a%2Fimg/data?redirect=1', '//evil.example/images/a%2Fimg/data?redirect=1']) {
    const answer = await rawExchange(b.url, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${auth}\r\n`)
    t.match(answer, /^HTTP\/1\.1 400/, `${target}: 400`)
    t.notMatch(answer, /location:/i, 'and no Location')
  }
  // Another Host is refused at the edge (DNS rebinding); forwarding headers and a second redirect
  // parameter naming another host change nothing.
  t.match(await rawExchange(b.url, `GET /images/a%2Fimg/data?redirect=1 HTTP/1.1\r\nHost: evil.example\r\n${auth}\r\n`), /^HTTP\/1\.1 421/, 'another Host: 421')
  const answer = await rawExchange(b.url, `GET /images/a%2Fimg/data?redirect=1&redirect=http://evil.example/x&x-forwarded-host=evil.example HTTP/1.1\r\nHost: ${host}\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n${auth}\r\n`)
  const location = /\r\nlocation: ([^\r]*)/i.exec(answer)?.[1]
  t.match(answer, /^HTTP\/1\.1 307/)
  t.equal(new URL(location!).origin, new URL(a.url).origin, 'the Location is the owner\'s advertised origin')
  t.equal(location, `${a.url}/images/a%2Fimg/data?x-forwarded-host=evil.example`, 'no redirect parameter is carried over, the rest of the query is')
})

t.test('a node whose peer has other tokens forwards instead of redirecting', async (t) => {
  const redis = await startRedis(t)
  const other: NonNullable<ServerOptions['tokens']> = [TOKENS[0], { token: 'another-reader-0123456789abcdef', scopes: ['read'], name: 'reader' }]
  const a = await node(t, redis, 'node-a', other)
  const b = await node(t, redis, 'node-b')
  a.server.store.create({ id: 'a/img', width: 4, height: 2, mode: 'L' })
  await knows(b, 'a/img', 'node-a')
  const res = await fetch(`${b.url}/images/a%2Fimg/data?redirect=1`, { headers: { ...AUTH, prefer: 'redirect' }, redirect: 'manual' })
  t.equal(res.status, 200, 'forwarded: the reader\'s token would not open the image at the owner')
  t.equal(res.headers.get('x-pixelport-node'), 'node-a')
  t.equal(res.headers.get('preference-applied'), null)
  t.equal((await res.arrayBuffer()).byteLength, 8)
})

t.test('the token-configuration digest, and its place in the signed registration', async (t) => {
  const same = authDigest([TOKENS[1], TOKENS[0]].map((x) => ({ ...x, name: 'renamed' })), CLUSTER_TOKEN)
  t.equal(authDigest(TOKENS, CLUSTER_TOKEN), same, 'order and names do not matter')
  t.not(authDigest([TOKENS[0], { ...TOKENS[1], scopes: ['read', 'write'] }], CLUSTER_TOKEN), same, 'another scope does')
  t.not(authDigest([TOKENS[0], { ...TOKENS[1], ids: ['a/*'] }], CLUSTER_TOKEN), same, 'so do id limits')
  t.not(authDigest(TOKENS, 'another-cluster-token-0123456789'), same, 'keyed by the cluster token')
  t.notMatch(same!, READER, 'the digest shows no token')
  t.equal(authDigest(TOKENS, null), null, 'tokens without a cluster token: unsigned registrations, never redirect')
  t.type(authDigest([], null), 'string', 'an open cluster may redirect (no token to carry)')

  const r = { id: 'node-a', url: 'http://10.0.0.5:8080', startedAt: 1, auth: same! }
  const sig = signRegistration(CLUSTER_TOKEN, r)
  t.ok(verifyRegistration(CLUSTER_TOKEN, r, sig))
  t.notOk(verifyRegistration(CLUSTER_TOKEN, { ...r, auth: 'f'.repeat(64) }, sig), 'another digest breaks the signature')
  t.notOk(verifyRegistration(CLUSTER_TOKEN, { id: r.id, url: r.url, startedAt: r.startedAt }, sig), 'so does leaving it out')
})

t.test('the redirect parameter and the Prefer header', async (t) => {
  t.equal(withoutRedirectParam('/images/x/data?redirect=1'), '/images/x/data')
  t.equal(withoutRedirectParam('/images/x.png?size=2x1&redirect=1&q=3'), '/images/x.png?size=2x1&q=3')
  t.equal(withoutRedirectParam('/images/x.png?re%64irect=1&q=3'), '/images/x.png?q=3', 'an encoded name is the same parameter')
  t.equal(withoutRedirectParam('/images/x/data'), '/images/x/data')
  t.ok(prefers('redirect', 'redirect'))
  t.ok(prefers('return=minimal, Redirect; foo=bar', 'redirect'))
  t.ok(prefers(['wait=5', 'redirect'], 'redirect'))
  t.notOk(prefers('no-redirect', 'redirect'))
  t.notOk(prefers(undefined, 'redirect'))
})
