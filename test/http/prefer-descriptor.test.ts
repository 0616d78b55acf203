/**
 * `Prefer: descriptor` on `GET /images/:id/data` (protocol/http-headers.ts, server/http/data-routes.ts):
 * the descriptor of exactly the bytes sent, in X-Pixelport-Descriptor; `HttpClient.download` in one
 * request; a server without the header, or with a hostile one, still gives a download that is right.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { HttpClient } from '../../client/remote/http.js'
import { decodeDescriptorHeader, DESCRIPTOR_HEADER, DESCRIPTOR_HEADER_LIMIT, encodeDescriptorHeader, prefers, withoutPreference } from '../../protocol/http-headers.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { imagePath } from '../../protocol/urls.js'
import { startServer } from '../helpers/server.js'

/** A proxy in front of `target` that counts requests by path, and may rewrite the response headers. */
async function countingProxy (t: Test, target: string, rewrite: (headers: http.IncomingHttpHeaders) => void = () => {}): Promise<{ url: string, paths: string[] }> {
  const paths: string[] = []
  const server = http.createServer((req, res) => {
    paths.push(req.url!)
    const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers }
      rewrite(headers)
      res.writeHead(answer.statusCode!, headers)
      answer.pipe(res)
    })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths }
}

t.test('the header codec: round trip, any id, refusals', async (t) => {
  const d = { id: 'cams/ünï 1', shape: [2, 3], typestr: '|u1', byteLength: 6, generation: 4 } as unknown as ImageDescriptor
  const encoded = encodeDescriptorHeader(d)!
  t.match(encoded, /^[A-Za-z0-9_-]+$/, 'base64url, no padding: a valid header value')
  t.same(decodeDescriptorHeader(encoded), d)
  t.equal(encodeDescriptorHeader({ ...d, view: 'x'.repeat(DESCRIPTOR_HEADER_LIMIT) } as unknown as ImageDescriptor), null, 'too long: not sent')
  for (const bad of [undefined, '', '!!!', 'e30', Buffer.from('not json').toString('base64url'), Buffer.from('{"id":"x","shape":[-1],"typestr":"|u1","byteLength":1,"generation":0}').toString('base64url'),
    Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url'), 'A'.repeat(DESCRIPTOR_HEADER_LIMIT + 4)]) {
    t.equal(decodeDescriptorHeader(bad), null, `refused: ${String(bad).slice(0, 40)}`)
  }
  t.ok(prefers('return=minimal, Descriptor', 'descriptor'))
  t.notOk(prefers('descriptors', 'descriptor'))
  t.equal(withoutPreference('redirect, descriptor', 'redirect'), 'descriptor')
  t.equal(withoutPreference('Redirect; x=1', 'redirect'), undefined, 'nothing left: no header')
  t.equal(withoutPreference('no-redirect', 'redirect'), 'no-redirect')
})

t.test('GET data with Prefer: descriptor carries the descriptor of exactly those bytes', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'cams/1', width: 4, height: 2, mode: 'RGB' }, new Uint8Array(24).fill(9))
  await server.store.write('cams/1', new Uint8Array(24).fill(3))
  const asked = await request(url + imagePath('cams/1', '/data'), { headers: { prefer: 'descriptor' } })
  const bytes = Buffer.from(await asked.body.arrayBuffer())
  const d = decodeDescriptorHeader(asked.headers[DESCRIPTOR_HEADER] as string)!
  t.match(d, { id: 'cams/1', shape: [2, 4, 3], typestr: '|u1', byteLength: 24, generation: 1, mode: 'RGB' })
  t.equal(asked.headers.etag, `"${d.generation}"`, 'the generation of these bytes')
  t.equal(asked.headers['preference-applied'], 'descriptor')
  t.equal(asked.headers.vary, 'Prefer')
  t.ok(bytes.equals(Buffer.alloc(24, 3)))
  const plain = await request(url + imagePath('cams/1', '/data'))
  await plain.body.dump()
  t.equal(plain.headers[DESCRIPTOR_HEADER], undefined, 'not asked for: not sent')
  t.equal(plain.headers['preference-applied'], undefined)
})

t.test('download is one request, with the descriptor from the header', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'one', width: 64, height: 32, mode: 'L' }, new Uint8Array(2048).fill(7))
  const proxy = await countingProxy(t, url)
  const client = new HttpClient(proxy.url)
  t.teardown(() => client.close())
  const got = await client.download('one')
  t.same(proxy.paths, ['/images/one/data'], 'no descriptor request beside it')
  t.match(got.descriptor, { id: 'one', shape: [32, 64], byteLength: 2048, generation: 0 })
  t.equal(got.generation, 0)
  t.ok(Buffer.from(got.bytes).equals(Buffer.alloc(2048, 7)))
})

t.test('a server that sends no descriptor header: the descriptor is asked for after', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'old', width: 8, height: 8, mode: 'L' }, new Uint8Array(64).fill(1))
  const proxy = await countingProxy(t, url, (headers) => { delete headers[DESCRIPTOR_HEADER] })
  const client = new HttpClient(proxy.url)
  t.teardown(() => client.close())
  const got = await client.download('old')
  t.same(proxy.paths, ['/images/old/data', '/images/old'])
  t.match(got.descriptor, { id: 'old', shape: [8, 8], byteLength: 64 })
})

t.test('a hostile descriptor header: garbage is ignored, a lie about the bytes fails the download', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'x', width: 8, height: 8, mode: 'L' }, new Uint8Array(64).fill(1))
  const garbage = await countingProxy(t, url, (headers) => { headers[DESCRIPTOR_HEADER] = '%%%not-base64%%%' })
  const c1 = new HttpClient(garbage.url)
  t.teardown(() => c1.close())
  t.match((await c1.download('x')).descriptor, { id: 'x', byteLength: 64 }, 'unreadable: asked for separately')
  const lie = encodeDescriptorHeader({ ...server.store.describe('x'), shape: [4, 4], byteLength: 16 })!
  const liar = await countingProxy(t, url, (headers) => { headers[DESCRIPTOR_HEADER] = lie })
  const c2 = new HttpClient(liar.url)
  t.teardown(() => c2.close())
  await t.rejects(c2.download('x'), { code: 'PXP_ERR_BYTE_COUNT' }, 'a descriptor that does not fit the bytes is never returned')
})
