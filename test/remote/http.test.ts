/**
 * The HTTP helpers of the remote client against the real HTTP API.
 */
import t from 'tap'
import { download, fetchDescriptor, fetchList } from '../../client/remote/index.js'
import { startServer } from '../helpers/server.js'

t.test('fetchDescriptor, fetchList and download', async (t) => {
  const { url, server } = await startServer(t)
  const bytes = new Uint8Array(12 * 10 * 4).map((_, i) => i & 0xff)
  server.store.create({ id: 'cams/one', width: 12, height: 10, mode: 'F' }, bytes)
  await server.store.write('cams/one', bytes.map((v) => v ^ 1))
  const d = await fetchDescriptor(url, 'cams/one')
  t.match(d, { id: 'cams/one', typestr: '<f4', generation: 1 })
  t.same((await fetchList(url + '/')).map((x) => x.id), ['cams/one'])
  const got = await download(url, 'cams/one')
  t.equal(got.generation, 1)
  t.equal(got.descriptor.generation, 1)
  t.type(got.data, Float32Array)
  t.same(Buffer.from(got.bytes), Buffer.from(bytes.map((v) => v ^ 1)))
  const be = server.store.create({ id: 'be', width: 3, height: 3, mode: 'I;16B' })
  t.equal((await download(url, be.id)).data.byteLength, 18, 'big-endian data: the raw bytes')
  await t.rejects(fetchDescriptor(url, 'missing'), { name: 'PixelportError', code: 'PXP_ERR_NOT_FOUND' })
  await t.rejects(download(url, 'missing'), { code: 'PXP_ERR_NOT_FOUND' })
  const controller = new AbortController()
  controller.abort()
  await t.rejects(fetchDescriptor(url, 'cams/one', { signal: controller.signal }), { code: 'PXP_ERR_ABORTED' })
  await server.close()
  await t.rejects(fetchDescriptor(url, 'cams/one'), { code: 'PXP_ERR_CLOSED' })
})
