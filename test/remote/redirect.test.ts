/**
 * Following a cluster node's redirect (`Prefer: redirect` → 307 to the owner): one redirect, to http(s)
 * only, with the token only for an origin the client trusts. The node that redirects is a small fastify
 * server written here; the owner a real Pixelport server with tokens; the attacker a server that records
 * what it is sent.
 */
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { HttpClient } from '../../client/remote/index.js'
import { imagePath } from '../../protocol/urls.js'
import { startServer } from '../helpers/server.js'
import { ADMIN, TOKENS } from '../helpers/tokens.js'

interface Setup { owner: string, node: string, evil: string, bytes: Uint8Array, seen: { prefer: Array<string | undefined>, evil: Array<Record<string, unknown>> }, redirectTo: (url: string) => void }

async function setup (t: Test): Promise<Setup> {
  const { url: owner, server } = await startServer(t, { tokens: TOKENS })
  const bytes = new Uint8Array(8 * 4 * 3).map((_, i) => i)
  server.store.create({ id: 'a/img', width: 8, height: 4, mode: 'RGB' }, bytes)
  const seen: Setup['seen'] = { prefer: [], evil: [] }
  let location = ''
  // A node that does not own the image: descriptors it answers itself (from the owner), pixels by redirect.
  const node = Fastify()
  node.get<{ Params: { id: string } }>('/images/:id', async (request, reply) => {
    const res = await fetch(owner + imagePath(request.params.id), { headers: { authorization: request.headers.authorization ?? '' } })
    return await reply.code(res.status).type('application/json').send(await res.text())
  })
  node.get('/images/:id/data', async (request, reply) => {
    seen.prefer.push(request.headers.prefer as string | undefined)
    return await reply.code(307).header('location', location).send()
  })
  const evil = Fastify()
  evil.get('/*', async (request, reply) => {
    seen.evil.push({ ...request.headers })
    if (request.url.startsWith('/again')) return await reply.code(307).header('location', owner + imagePath('a/img', '/data')).send()
    return await reply.code(200).type('application/octet-stream').send(Buffer.alloc(bytes.byteLength))
  })
  t.teardown(async () => { await node.close(); await evil.close() })
  return {
    owner,
    node: await node.listen({ port: 0, host: '127.0.0.1' }),
    evil: await evil.listen({ port: 0, host: '127.0.0.1' }),
    bytes,
    seen,
    redirectTo: (url) => { location = url },
  }
}

t.test('a redirect to a trusted origin is followed with the token', async (t) => {
  const s = await setup(t)
  s.redirectTo(s.owner + imagePath('a/img', '/data'))
  const client = new HttpClient(s.node, { token: ADMIN, redirect: true, trustedOrigins: [s.owner] })
  t.teardown(() => client.close())
  const got = await client.download('a/img')
  t.same([...got.bytes], [...s.bytes], 'the owner\'s bytes')
  t.same(s.seen.prefer, ['redirect, descriptor'], 'asked for a redirect (and for the descriptor in a header)')
  // A relative Location is resolved against the node's URL (same origin: trusted).
  s.redirectTo(imagePath('a/img', '/data'))
  await t.rejects(client.download('a/img'), { code: 'PXP_ERR_PROTOCOL' }, 'the node redirects to itself again: one redirect only')
})

t.test('the token never goes to an origin the client does not trust', async (t) => {
  const s = await setup(t)
  const client = new HttpClient(s.node, { token: ADMIN, redirect: true, headers: { cookie: 'session=1', 'x-trace': 't1' } })
  t.teardown(() => client.close())
  s.redirectTo(s.owner + imagePath('a/img', '/data'))
  await t.rejects(client.download('a/img'), { code: 'PXP_ERR_UNAUTHORIZED' }, 'the owner, not configured as trusted, got no token')
  s.redirectTo(s.evil + '/steal')
  await client.download('a/img')
  t.equal(s.seen.evil.length, 1)
  t.equal(s.seen.evil[0].authorization, undefined, 'no Authorization to the attacker')
  t.equal(s.seen.evil[0].cookie, undefined, 'no Cookie to the attacker')
  t.equal(s.seen.evil[0]['x-trace'], 't1', 'other headers go along')
  t.equal(s.seen.evil[0].prefer, 'descriptor', 'and no second redirect is asked for (the descriptor still is)')
  // A trusted origin is scheme + host + port: the same host on another port is not trusted.
  const samehost = new HttpClient(s.node, { token: ADMIN, redirect: true, trustedOrigins: [s.owner.replace(/:\d+$/, ':1')] })
  t.teardown(() => samehost.close())
  s.redirectTo(s.evil + '/steal')
  await samehost.download('a/img')
  t.equal(s.seen.evil[1].authorization, undefined, 'another port of a trusted host is another origin')
})

t.test('only one redirect, only to http(s)', async (t) => {
  const s = await setup(t)
  const client = new HttpClient(s.node, { token: ADMIN, redirect: true, trustedOrigins: [s.evil] })
  t.teardown(() => client.close())
  s.redirectTo(s.evil + '/again')
  await t.rejects(client.download('a/img'), { code: 'PXP_ERR_PROTOCOL', message: /one redirect/ })
  for (const location of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'http://[bad']) {
    s.redirectTo(location)
    await t.rejects(client.download('a/img'), { code: 'PXP_ERR_PROTOCOL' }, location)
  }
  const plain = new HttpClient(s.node, { token: ADMIN })
  t.teardown(() => plain.close())
  s.redirectTo(s.owner + imagePath('a/img', '/data'))
  const before = s.seen.prefer.length
  await t.rejects(plain.download('a/img'), { name: 'PixelportError' }, 'without the option a 307 is not followed')
  t.equal(s.seen.prefer[before], 'descriptor', 'and no redirect was asked for')
})
