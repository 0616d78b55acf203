/**
 * client/remote/http.ts `HttpClient.request()`/`send()` for any request to the server (what the CLI's
 * put/get/ls/rm use): streamed bodies, and failures as PixelportErrors with the network error under them.
 */
import { once } from 'node:events'
import net from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { HttpClient, jsonOf } from '../../client/remote/http.js'
import { imagePath } from '../../protocol/urls.js'
import { startServer } from '../helpers/server.js'

t.test('a streamed upload with its length, then a download, a listing and a delete', async (t) => {
  const { url, server } = await startServer(t)
  const client = new HttpClient(url + '/')
  t.teardown(() => client.close())
  const bytes = Buffer.alloc(64 * 48, 7)
  const body = Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)])
  const created = await client.request('POST', '/images?id=r/one&width=64&height=48&mode=L', {
    body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) },
  })
  t.equal(created.status, 201)
  t.equal(jsonOf<{ id: string }>(created).id, 'r/one')
  t.same(Buffer.from((await server.store.read('r/one')).bytes), bytes, 'the bytes arrived whole')
  t.same(Buffer.from((await client.read(imagePath('r/one', '/data'))).bytes), bytes)
  t.same(jsonOf<{ images: Array<{ id: string }> }>(await client.request('GET', '/images')).images.map((d) => d.id), ['r/one'], 'a trailing slash on the base URL is fine')
  await client.request('DELETE', imagePath('r/one'))
  t.equal(server.store.has('r/one'), false)
})

t.test('failures: the server\'s code, or PXP_ERR_CLOSED with the network error under it', async (t) => {
  const { url } = await startServer(t)
  const client = new HttpClient(url)
  t.teardown(() => client.close())
  await t.rejects(client.read(imagePath('no/such', '/data')), { code: 'PXP_ERR_NOT_FOUND' })
  await t.rejects(client.request('POST', '/images?width=2&height=2&mode=L', { body: Buffer.alloc(3), headers: { 'content-type': 'application/octet-stream' } }),
    { code: 'PXP_ERR_BYTE_COUNT' })
  const dead = net.createServer((socket) => socket.resetAndDestroy()).listen(0, '127.0.0.1')
  await once(dead, 'listening')
  t.teardown(() => new Promise((resolve) => dead.close(resolve)))
  const deadClient = new HttpClient(`http://127.0.0.1:${(dead.address() as net.AddressInfo).port}`)
  t.teardown(() => deadClient.close())
  const err = await deadClient.request('GET', '/images').catch((e: unknown) => e) as Error & { code: string, cause: { code?: string } }
  t.equal(err.code, 'PXP_ERR_CLOSED')
  t.match(err.message, /ECONNRESET/)
  t.equal(err.cause.code, 'ECONNRESET', 'the network error, for callers that sort failures')
  const abort = new AbortController()
  abort.abort()
  await t.rejects(client.request('GET', '/images', { signal: abort.signal }), { code: 'PXP_ERR_ABORTED' })
})
