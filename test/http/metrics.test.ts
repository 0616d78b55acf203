/**
 * GET /metrics: Prometheus text of one server's own registry, scraped after real activity (HTTP uploads and
 * downloads, a worker thread committing frames and holding a lease).
 */
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { startServer } from '../helpers/server.js'
import { encodeWithSharp, pattern } from '../helpers/picture-files.js'
import { call, download, postPicture, put, upload } from '../helpers/http.js'
import { until } from '../helpers/until.js'

/** Prometheus text → `name{labels}` → value. Checks the exposition's shape on the way. */
async function scrape (url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`)
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`)
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) throw new Error('not Prometheus text')
  const values = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+|NaN)$/.exec(line)
    if (m === null) throw new Error(`malformed line: ${line}`)
    values.set(m[1], Number(m[2]))
  }
  return values
}

/**
 * Scrape until `key` reads `expected` (counts that land when a response finishes or a commit is announced,
 * a moment after the client saw it); fails with the last value read if it never does.
 */
async function settled (url: string, key: string, expected: number): Promise<number> {
  let value: number | undefined
  await until(async () => (value = (await scrape(url)).get(key)) === expected, { what: () => `${key} to read ${expected} (last read: ${String(value)})`, interval: 2 })
  return value!
}

t.test('figures after activity: images, memory, bytes streamed and received, generations, leases, connections', async (t) => {
  const { url, server } = await startServer(t)
  let m = await scrape(url)
  t.equal(m.get('pixelport_images'), 0)
  t.equal(m.get('pixelport_bytes_streamed_total{transport="http"}'), 0, 'counters exist from the start')
  t.equal(m.get('pixelport_bytes_streamed_total{transport="ws"}'), 0)
  t.equal(m.get('pixelport_generations_committed_total'), 0)
  t.equal(m.get('pixelport_connections{transport="worker"}'), 0)
  t.equal(m.get('pixelport_memory_capacity_bytes'), 64 * 1024 * 1024)

  const size = 64 * 48 * 3
  await upload(url, { width: 64, height: 48, mode: 'RGB', id: 'raw' }, pattern(size))
  const png = await encodeWithSharp(pattern(32 * 32 * 4), 32, 32, 4, 'png')
  await postPicture(url, png, 'image/png', { id: 'picture' })
  await call(url, 'POST', '/images/raw/views', { x: 0, y: 0, width: 8, height: 8, id: 'raw/roi' })
  for (let i = 0; i < 3; i++) await put(url, 'raw', pattern(size, i + 2))
  t.equal((await download(url, 'raw')).bytes.byteLength, size)
  await download(url, 'raw', { range: 'bytes=0-99' })
  const picture = new Uint8Array(await (await fetch(`${url}/images/raw.png`)).arrayBuffer())
  // Neither of these sends pixels.
  await fetch(`${url}/images/raw/data`, { method: 'HEAD' })
  await download(url, 'raw', { 'if-none-match': '"3"' })

  const streamed = size + 100 + picture.byteLength
  t.equal(await settled(url, 'pixelport_bytes_streamed_total{transport="http"}', streamed), streamed,
    'bytes streamed: the download, the range and the picture; not HEAD, not 304')
  m = await scrape(url)
  t.equal(m.get('pixelport_bytes_received_total{transport="http"}'), size + png.byteLength + 3 * size, 'bytes received: raw upload, picture file, three PUTs')
  t.equal(m.get('pixelport_images'), 2)
  t.equal(m.get('pixelport_views'), 1)
  t.equal(m.get('pixelport_images_created_total'), 3)
  t.equal(m.get('pixelport_generations_committed_total'), 3, 'three PUTs, counted once although the view repeats them')
  const stats = server.store.stats()
  t.equal(m.get('pixelport_memory_used_bytes'), stats.used)
  t.equal(m.get('pixelport_memory_free_bytes'), stats.free)
  t.equal(m.get('pixelport_memory_reserved_bytes'), stats.reserved)
  t.equal(m.get('pixelport_memory_largest_free_run_bytes'), stats.largestFreeRun)
  t.equal(m.get('pixelport_memory_blocks'), stats.blocks)
  t.ok(stats.used >= size + 32 * 32 * 4)
  const snapshots = server.snapshots.stats()
  t.equal(m.get('pixelport_snapshot_bytes'), snapshots.bytes)
  t.ok(snapshots.bytes > 0, 'the latest download is still cached')
  t.equal(m.get('pixelport_snapshot_max_bytes'), server.options.snapshotBytes)
  t.equal(m.get('pixelport_leases'), 0)

  // A worker thread: one connection, one lease while it holds the image open, and its commits counted
  // exactly even though the store announces them coalesced.
  const agent = await startAgent(server)
  t.teardown(() => agent.call('exit'))
  await agent.call('open', 'raw')
  m = await scrape(url)
  t.equal(m.get('pixelport_connections{transport="worker"}'), 1)
  t.equal(m.get('pixelport_leases'), 1, 'the worker holds the image')
  const generation = await agent.call<number>('writeFrames', 'raw', 200)
  t.equal(generation, 203)
  await until(() => server.store.describe('raw').generation === 203, { what: 'the commits' })
  t.equal(await settled(url, 'pixelport_generations_committed_total', 203), 203, '3 PUTs + 200 worker frames')
  await agent.call('release', 'raw')
  t.equal((await scrape(url)).get('pixelport_leases'), 0, 'lease given back')

  // What transports report through ctx.metrics.
  server.metrics.addSubscriptions(3)
  server.metrics.addSubscriptions(-1)
  server.metrics.addConnections('ws', 2)
  server.metrics.addBytesStreamed('ws', 1000)
  server.metrics.addBytesReceived('ws', 10)
  let held = 5
  const stop = server.metrics.observeSubscriptions(() => held)
  const stopWs = server.metrics.observeConnections('ws', () => 1)
  m = await scrape(url)
  t.equal(m.get('pixelport_subscriptions'), 7, 'deltas and an observed count add up')
  t.equal(m.get('pixelport_connections{transport="ws"}'), 3)
  held = 0
  stop()
  stopWs()
  m = await scrape(url)
  t.equal(m.get('pixelport_subscriptions'), 2)
  t.equal(m.get('pixelport_connections{transport="ws"}'), 2)
  t.equal(m.get('pixelport_bytes_streamed_total{transport="ws"}'), 1000)
  t.equal(m.get('pixelport_bytes_received_total{transport="ws"}'), 10)

  await call(url, 'DELETE', '/images/raw')
  m = await scrape(url)
  t.equal(m.get('pixelport_images'), 1)
  t.equal(m.get('pixelport_views'), 0)
  t.equal(m.get('pixelport_images_deleted_total'), 2, 'the image and its view')
  t.equal(m.get('pixelport_generations_committed_total'), 203, 'a counter never goes down')
})

t.test('each server has its own registry', async (t) => {
  const a = await startServer(t)
  const b = await startServer(t)
  await upload(a.url, { width: 4, height: 4, mode: 'L', id: 'x' }, new Uint8Array(16))
  await put(a.url, 'x', new Uint8Array(16).fill(1))
  t.equal((await scrape(a.url)).get('pixelport_images'), 1)
  t.equal((await scrape(b.url)).get('pixelport_images'), 0)
  t.equal((await scrape(a.url)).get('pixelport_generations_committed_total'), 1)
  t.equal((await scrape(b.url)).get('pixelport_generations_committed_total'), 0)
  t.not(a.server.metrics.registry, b.server.metrics.registry)
})
