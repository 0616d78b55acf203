import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, upload } from '../helpers/http.js'

t.test('concurrent creates of one id: exactly one 201, every other 409', async (t) => {
  const { url, server } = await startServer(t)
  const json = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    call(url, 'POST', '/images', { width: 16 + i, height: 16, mode: 'L', id: 'same' })))
  t.equal(json.filter((r) => r.status === 201).length, 1)
  t.same(json.filter((r) => r.status !== 201).map((r) => r.body.code), new Array(11).fill('PXP_ERR_ALREADY_EXISTS'))
  const winner = json.find((r) => r.status === 201)!.body
  t.same(server.store.describe('same'), winner)

  // Raw uploads race while their bodies are still arriving: the id is taken by the first to start.
  const size = 128 * 128 * 3
  const bodies = Array.from({ length: 8 }, () => randomBytes(size))
  const raw = await Promise.all(bodies.map((b) => upload(url, { width: 128, height: 128, mode: 'RGB', id: 'cam/raw' }, b)))
  const ok = raw.filter((r) => r.status === 201)
  t.equal(ok.length, 1)
  t.same(raw.filter((r) => r.status !== 201).map((r) => r.body.code), new Array(7).fill('PXP_ERR_ALREADY_EXISTS'))
  const stored = (await download(url, 'cam/raw')).bytes
  t.equal(bodies.filter((b) => Buffer.from(b).equals(stored)).length, 1, 'the winner\'s bytes, whole')
  t.equal(server.store.size, 2)
  t.ok(server.store.stats().used < 2 * size, 'the losers\' reservations were returned')
})

t.test('downloads during concurrent PUTs always see one whole generation', async (t) => {
  const { url } = await startServer(t)
  const size = 192 * 192 * 4
  await upload(url, { width: 192, height: 192, mode: 'RGBA', id: 'live' }, new Uint8Array(size))
  const fillOf = new Map<number, number>([[0, 0]])
  const puts = Array.from({ length: 16 }, async (_, i) => {
    const fill = i + 1
    const res = await put(url, 'live', new Uint8Array(size).fill(fill))
    t.equal(res.status, 200)
    fillOf.set(res.body.generation, fill)
  })
  const gets = Array.from({ length: 24 }, async () => download(url, 'live'))
  const [, got] = await Promise.all([Promise.all(puts), Promise.all(gets)])
  t.same([...fillOf.keys()].sort((a, b) => a - b), Array.from({ length: 17 }, (_, g) => g), 'every PUT committed its own generation')
  for (const res of got) {
    const generation = Number(res.headers.get('x-pixelport-generation'))
    const fill = fillOf.get(generation)!
    t.equal(res.bytes.byteLength, size)
    t.ok(res.bytes.every((b) => b === fill), `generation ${generation} is all ${fill}`)
  }
})

t.test('concurrent views and deletes keep the catalog consistent', async (t) => {
  const { url, server } = await startServer(t)
  await call(url, 'POST', '/images', { width: 64, height: 64, mode: 'L', id: 'base' })
  const results = await Promise.all([
    ...Array.from({ length: 10 }, (_, i) => call(url, 'POST', '/images/base/views', { x: i, y: i, width: 4, height: 4, id: `base/v${i}` })),
    call(url, 'DELETE', '/images/base'),
  ])
  t.equal(results.at(-1)!.status, 204)
  for (const r of results.slice(0, -1)) t.ok(r.status === 201 || r.body.code === 'PXP_ERR_NOT_FOUND', `view: ${r.status}`)
  t.same((await call(url, 'GET', '/images')).body.images, [], 'deleting the base took every view with it')
  t.equal(server.store.stats().used, 0)
})
