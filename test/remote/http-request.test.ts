/**
 * client/remote/http.ts `request()`: any request to the server over fetch (what the CLI's put/get/ls/rm
 * use), with streamed bodies and failures as PixelportErrors.
 */
import { once } from 'node:events'
import net from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { imageUrl, request } from '../../client/remote/http.js'
import { startServer } from '../helpers/server.js'

t.test('a streamed upload with its length, then a download, a listing and a delete', async (t) => {
  const { url, server } = await startServer(t)
  const bytes = Buffer.alloc(64 * 48, 7)
  const body = Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)])
  const created = await request(url, '/images?id=r/one&width=64&height=48&mode=L', {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) },
  })
  t.equal(created.status, 201)
  t.equal((await created.json() as { id: string }).id, 'r/one')
  t.same(Buffer.from((await server.store.read('r/one')).bytes), bytes, 'the bytes arrived whole')
  const data = await request(url, imageUrl('', 'r/one', '/data'))
  t.same(Buffer.from(await data.arrayBuffer()), bytes)
  t.equal(imageUrl(url, 'r/one'), `${url}/images/r%2Fone`, 'ids travel percent-encoded')
  const list = await (await request(url + '/', '/images')).json() as { images: Array<{ id: string }> }
  t.same(list.images.map((d) => d.id), ['r/one'], 'a trailing slash on the base URL is fine')
  await (await request(url, imageUrl('', 'r/one'), { method: 'DELETE' })).body?.cancel()
  t.equal(server.store.has('r/one'), false)
})

t.test('failures: the server\'s code, or PXP_ERR_CLOSED with the network error under it', async (t) => {
  const { url } = await startServer(t)
  await t.rejects(request(url, imageUrl('', 'no/such')), { code: 'PXP_ERR_NOT_FOUND' })
  await t.rejects(request(url, '/images?width=2&height=2&mode=L', { method: 'POST', body: Buffer.alloc(3), headers: { 'content-type': 'application/octet-stream' } }),
    { code: 'PXP_ERR_BYTE_COUNT' })
  const dead = net.createServer((socket) => socket.resetAndDestroy()).listen(0, '127.0.0.1')
  await once(dead, 'listening')
  t.teardown(() => new Promise((resolve) => dead.close(resolve)))
  const err = await request(`http://127.0.0.1:${(dead.address() as net.AddressInfo).port}`, '/images').catch((e: unknown) => e) as Error & { code: string, cause: { cause?: { code?: string } } }
  t.equal(err.code, 'PXP_ERR_CLOSED')
  t.match(err.message, /ECONNRESET/)
  t.equal(err.cause.cause?.code, 'ECONNRESET', 'the network error, for callers that sort failures')
  const abort = new AbortController()
  abort.abort()
  await t.rejects(request(url, '/images', { signal: abort.signal }), { code: 'PXP_ERR_ABORTED' })
})
