/**
 * RemoteClient.close() drains (calls in flight finish, then the connections close) and destroy() does
 * not (calls in flight fail with PXP_ERR_CLOSED at once); afterwards every call fails with PXP_ERR_CLOSED.
 * Against a real server, with an image large enough that its transfer is still running when they are called.
 */
import t, { type Test } from 'tap'
import { HttpClient, RemoteClient } from '../../client/remote/index.js'
import { startServer } from '../helpers/server.js'

const WIDTH = 2048
const HEIGHT = 2048 // RGBA: 16 MiB

async function serverWithImage (t: Test): Promise<{ url: string, bytes: Uint8Array }> {
  const { url, server } = await startServer(t, { capacity: 128 * 1024 * 1024, blockSize: 32 * 1024 * 1024, maxImageBytes: 32 * 1024 * 1024 })
  const bytes = new Uint8Array(WIDTH * HEIGHT * 4).map((_, i) => (i * 7) & 0xff)
  server.store.create({ id: 'big', width: WIDTH, height: HEIGHT, mode: 'RGBA' }, bytes)
  return { url, bytes }
}

async function allClosed (t: Test, client: RemoteClient): Promise<void> {
  t.equal(client.connected, false)
  await t.rejects(client.get('big'), { code: 'PXP_ERR_CLOSED' }, 'get after')
  await t.rejects(client.download('big'), { code: 'PXP_ERR_CLOSED' }, 'download after')
  await t.rejects(client.describe('big'), { code: 'PXP_ERR_CLOSED' }, 'describe after')
  await t.rejects(client.subscribe(), { code: 'PXP_ERR_CLOSED' }, 'subscribe after')
  await t.rejects(client.put('big', new Uint8Array(4)), { code: 'PXP_ERR_CLOSED' }, 'put after')
}

t.test('close() lets a download and a get in flight finish, then closes', async (t) => {
  const { url, bytes } = await serverWithImage(t)
  const client = await RemoteClient.connect(url)
  const events = await client.subscribe({ ids: ['big'] })
  const download = client.download('big')
  const get = client.get('big')
  const closing = client.close()
  const [d, g] = await Promise.all([download, get])
  t.equal(Buffer.compare(d.bytes, bytes), 0, 'the download completed, every byte')
  t.equal(Buffer.compare(g.bytes, bytes), 0, 'the get completed, every byte')
  await closing
  await t.rejects(events.next(), { code: 'PXP_ERR_CLOSED' }, 'the subscription ended with the connection')
  await allClosed(t, client)
  await client.close()
  await client.destroy()
  t.pass('close and destroy again are no-ops')
})

t.test('destroy() fails calls in flight at once with PXP_ERR_CLOSED', async (t) => {
  const { url } = await serverWithImage(t)
  const client = await RemoteClient.connect(url)
  const download = client.download('big')
  const get = client.get('big')
  const settled = Promise.allSettled([download, get])
  await client.destroy()
  const [d, g] = await settled
  t.match(d, { status: 'rejected', reason: { code: 'PXP_ERR_CLOSED' } }, 'the download failed')
  t.match(g, { status: 'rejected', reason: { code: 'PXP_ERR_CLOSED' } }, 'the get failed')
  await allClosed(t, client)
})

t.test('HttpClient: close() drains, destroy() does not', async (t) => {
  const { url, bytes } = await serverWithImage(t)
  const draining = new HttpClient(url)
  const inFlight = draining.download('big')
  const closed = draining.close()
  t.equal(Buffer.compare((await inFlight).bytes, bytes), 0, 'the download in flight completed')
  await closed
  await t.rejects(draining.describe('big'), { code: 'PXP_ERR_CLOSED' })
  const destroyed = new HttpClient(url)
  const stopped = destroyed.download('big')
  await destroyed.destroy()
  await t.rejects(stopped, { code: 'PXP_ERR_CLOSED' })
  await t.rejects(destroyed.download('big'), { code: 'PXP_ERR_CLOSED' })
})

t.test('download into a buffer of the caller', async (t) => {
  const { url, bytes } = await serverWithImage(t)
  const client = await RemoteClient.connect(url)
  t.teardown(() => client.destroy())
  const into = new Uint8Array(bytes.byteLength + 16)
  const got = await client.download('big', { into })
  t.equal(got.bytes.buffer, into.buffer, 'received in place')
  t.equal(Buffer.compare(got.bytes, bytes), 0)
  t.equal(got.generation, 0)
  await t.rejects(client.download('missing'), { code: 'PXP_ERR_NOT_FOUND' })
})
