/**
 * RemoteClient against a real server (Node.js path: `ws`).
 */
import t, { type Test } from 'tap'
import { RemoteClient, type RemoteEvent } from '../../client/remote/index.js'
import { startServer } from '../helpers/server.js'

const KiB = 1024

function wsUrl (url: string): string {
  return url.replace(/^http/, 'ws') + '/ws'
}

function pattern (n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >>> 9)) & 0xff
  return b
}

async function connect (t: Test, url: string): Promise<RemoteClient> {
  const client = await RemoteClient.connect(wsUrl(url))
  t.teardown(() => client.close())
  return client
}

t.test('catalog: create, list, describe, delete; errors are PixelportErrors with codes', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  t.match(c.limits, { chunkSize: Number, maxMessageBytes: Number })
  const d = await c.create({ width: 6, height: 4, mode: 'RGBA' }, { id: 'a' })
  t.match(d, { id: 'a', shape: [4, 6, 4], generation: 0 })
  const raw = await c.create({ shape: [3, 3], typestr: '<f8', id: 'raw' })
  t.equal(raw.id, 'raw')
  t.same((await c.list()).map((x) => x.id).sort(), ['a', 'raw'])
  t.same(await c.describe('a'), d)
  await c.delete('a')
  await t.rejects(c.describe('a'), { name: 'PixelportError', code: 'PXP_ERR_NOT_FOUND', status: 404 })
  await t.rejects(c.create({ width: 1, height: 1, mode: 'nope' }), { code: 'PXP_ERR_BAD_MODE' })
  await t.rejects(c.create({ width: 1, height: 1, mode: 'L' }, { id: 'raw' }), { code: 'PXP_ERR_ALREADY_EXISTS' })
  await t.rejects(c.delete('a'), { code: 'PXP_ERR_NOT_FOUND' })
})

t.test('put and get round-trip every dtype as the right TypedArray, small and chunked', async (t) => {
  const { url } = await startServer(t, { chunkSize: 16 * KiB })
  const c = await connect(t, url)
  const cases: Array<[Record<string, unknown>, new (...a: never[]) => unknown, number]> = [
    [{ width: 9, height: 5, mode: 'RGB' }, Uint8Array, 135],
    [{ width: 300, height: 200, mode: 'I;16' }, Uint16Array, 120000],
    [{ width: 64, height: 64, mode: 'F' }, Float32Array, 16384],
    [{ width: 40, height: 40, mode: 'I' }, Int32Array, 6400],
    [{ shape: [20, 30], typestr: '<f8' }, Float64Array, 4800],
    [{ shape: [10, 10], typestr: '<i8' }, BigInt64Array, 800],
    [{ shape: [10, 10], typestr: '<i2' }, Int16Array, 200],
    [{ width: 30, height: 30, mode: 'I;16B' }, Uint8Array, 1800],
  ]
  let n = 0
  for (const [spec, Array, bytes] of cases) {
    const id = `img${n++}`
    const data = pattern(bytes, n)
    const created = await c.put({ ...spec, id }, data)
    t.equal(created.id, id)
    const got = await c.get(id)
    t.same(Buffer.from(got.bytes), Buffer.from(data), `${id}: bytes`)
    t.type(got.data, Array, `${id}: ${Array.name}`)
    t.equal(got.data.byteLength, bytes)
    t.same(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(data), `${id}: data holds the bytes`)
    t.equal(got.generation, 0)
    const next = pattern(bytes, n + 100)
    const updated = await c.put(id, next)
    t.equal(updated.generation, 1, `${id}: overwritten`)
    t.same(Buffer.from((await c.get(id)).bytes), Buffer.from(next))
  }
  // A TypedArray that is a view into a larger buffer is sent as exactly its bytes.
  const backing = new Uint16Array(1000).map((_, i) => i)
  await c.put({ shape: [10, 10], typestr: '<u2', id: 'view' }, backing.subarray(100, 200))
  t.same(Array.from((await c.get('view')).data as Uint16Array), Array.from(backing.subarray(100, 200)))
  await t.rejects(c.put('view', new Uint8Array(3)), { code: 'PXP_ERR_BYTE_COUNT' })
  await t.rejects(c.put('missing', new Uint8Array(3)), { code: 'PXP_ERR_VALIDATION' })
})

t.test('get with region and generation', async (t) => {
  const { url, server } = await startServer(t)
  const c = await connect(t, url)
  const bytes = pattern(20 * 10 * 2, 1)
  await c.put({ width: 20, height: 10, mode: 'I;16', id: 'r' }, bytes)
  const region = await c.get('r', { region: { x: 2, y: 3, width: 4, height: 2 } })
  t.same(region.shape, [2, 4])
  t.same(region.region, { x: 2, y: 3, width: 4, height: 2 })
  const words = new Uint16Array(bytes.buffer)
  t.same(Array.from(region.data as Uint16Array), [...words.subarray(62, 66), ...words.subarray(82, 86)])
  const held = await server.snapshots.acquire('r')
  await c.put('r', pattern(400, 2))
  t.same(Buffer.from((await c.get('r', { generation: 0 })).bytes), Buffer.from(bytes))
  held.release()
  await c.put('r', pattern(400, 3))
  await t.rejects(c.get('r', { generation: 0 }), { code: 'PXP_ERR_GENERATION_GONE' })
  await t.rejects(c.get('r', { region: { x: 19, y: 0, width: 2, height: 1 } }), { code: 'PXP_ERR_BAD_REGION' })
})

t.test('get into a buffer the caller reuses', async (t) => {
  const { url } = await startServer(t, { chunkSize: 4 * KiB })
  const c = await connect(t, url)
  const bytes = pattern(100 * 50 * 4, 4)
  await c.put({ width: 100, height: 50, mode: 'F', id: 'f' }, bytes)
  const into = new Uint8Array(bytes.length + 64)
  const got = await c.get('f', { into })
  t.equal(got.bytes.buffer, into.buffer, 'the bytes are in the given buffer')
  t.equal(got.bytes.byteLength, bytes.length)
  t.same(Buffer.from(got.bytes), Buffer.from(bytes))
  t.type(got.data, Float32Array)
  const small = await c.get('f', { into, region: { x: 0, y: 0, width: 2, height: 2 } })
  t.equal(small.bytes.buffer, into.buffer, 'single-chunk frames too')
  await t.rejects(c.get('f', { into: new Uint8Array(10) }), { code: 'PXP_ERR_BYTE_COUNT' })
  t.same(Buffer.from((await c.get('f')).bytes), Buffer.from(bytes), 'the connection goes on')
})

t.test('subscribe: an async iterator of events, with frames when asked; return() unsubscribes', async (t) => {
  const { url, server } = await startServer(t)
  const c = await connect(t, url)
  const events = await c.subscribe({ ids: ['s'], policy: 'all', data: true })
  const plain = await c.subscribe()
  server.store.create({ id: 's', width: 4, height: 4, mode: 'L' }, new Uint8Array(16).fill(1))
  await server.store.write('s', new Uint8Array(16).fill(2))
  server.store.delete('s')
  const seen: RemoteEvent[] = []
  for await (const e of events) {
    seen.push(e)
    if (e.type === 'deleted') break
  }
  t.same(seen.map((e) => [e.type, e.generation, e.bytes?.[0]]), [['created', 0, 1], ['updated', 1, 2], ['deleted', 1, undefined]])
  t.type(seen[1].data, Uint8Array)
  t.equal((await events.next()).done, true, 'finished after break')
  const first = await plain.next()
  t.match(first.value, { type: 'created', id: 's' })
  await plain.return()
  server.store.create({ id: 't', width: 1, height: 1, mode: 'L' })
  t.same(await c.list().then((l) => l.map((d) => d.id)), ['t'])
  t.equal((await plain.next()).done, true)
})

t.test('a slow consumer of a latest subscription gets conflated events, counted', async (t) => {
  const { url, server } = await startServer(t)
  const c = await connect(t, url)
  server.store.create({ id: 'v', width: 8, height: 8, mode: 'L' })
  const sub = await c.subscribe({ ids: ['v'], policy: 'latest' })
  for (let g = 1; g <= 20; g++) await server.store.write('v', new Uint8Array(64).fill(g))
  // Nothing read yet: the client's buffer conflated what arrived.
  await c.list()
  let total = 0
  let last = 0
  while (last < 20) {
    const { value } = await sub.next()
    total += 1 + value!.skipped
    last = value!.generation
  }
  t.equal(total, 20, 'events + skipped = every generation')
  await sub.return()
})

t.test('a get can be aborted; close() and server shutdown fail what is pending with a code', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 16 * KiB, highWaterMark: 16 * KiB, blockSize: 16 * 1024 * KiB })
  const c = await connect(t, url)
  server.store.create({ id: 'big', shape: [4096, 4096], typestr: '|u1' })
  const controller = new AbortController()
  const pending = c.get('big', { signal: controller.signal })
  controller.abort()
  await t.rejects(pending, { code: 'PXP_ERR_ABORTED' })
  const already = new AbortController()
  already.abort()
  await t.rejects(c.get('big', { signal: already.signal }), { code: 'PXP_ERR_ABORTED' })
  t.equal((await c.get('big', { region: { x: 0, y: 0, width: 2, height: 2 } })).bytes.length, 4, 'connection still fine')

  const sub = await c.subscribe()
  const waiting = sub.next()
  const inFlight = c.describe('big')
  await inFlight
  const never = c.get('big')
  await server.close()
  await t.rejects(never, { code: 'PXP_ERR_CLOSED' })
  await t.rejects(waiting, { code: 'PXP_ERR_CLOSED' })
  await t.rejects(c.list(), { code: 'PXP_ERR_CLOSED' })
  t.equal(c.connected, false)
  await c.close()
})

t.test('connect fails with a code', async (t) => {
  const { url, server } = await startServer(t)
  await server.close()
  await t.rejects(RemoteClient.connect(wsUrl(url), { timeout: 2000 }), { code: 'PXP_ERR_CLOSED' })
  const controller = new AbortController()
  controller.abort()
  await t.rejects(RemoteClient.connect('ws://127.0.0.1:9/ws', { signal: controller.signal }), { code: 'PXP_ERR_ABORTED' })
})
