/**
 * What must hold after a fuzz run, whatever was thrown at the server: it still answers, the store is
 * consistent (every listed image describable and readable, with the right byte count), and nothing leaked
 * (no connection, snapshot, staging buffer or byte of image memory outlives the images and clients).
 */
import type { Test } from 'tap'
import { jsonOf } from '../../client/remote/index.js'
import { ERRORS } from '../../protocol/errors.js'
import { imagePath } from '../../protocol/urls.js'
import type { PixelportServer } from '../../server/server.js'
import type { ServerOptions } from '../../server/options.js'
import { send } from './http.js'
import { until } from './until.js'

const KiB = 1024

/** A small server: limits low enough that the fuzzer reaches them. */
export const FUZZ_SERVER_OPTIONS: ServerOptions = {
  blockSize: 256 * KiB,
  capacity: 4 * 1024 * KiB,
  maxImageBytes: 512 * KiB,
  maxImages: 64,
  maxDimension: 4096,
  maxJsonBytes: 16 * KiB,
  snapshotBytes: 2 * 1024 * KiB,
  maxMessageBytes: 128 * KiB,
  chunkSize: 16 * KiB,
  highWaterMark: 64 * KiB,
  // Load shedding would answer 503s that depend on the machine's load, not on the input.
  maxEventLoopDelayMs: 0,
}

/** True for a registry code whose HTTP status is `status`. */
export function isRegistryStatus (code: unknown, status: number): boolean {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code) && ERRORS[code as keyof typeof ERRORS].status === status
}

/** The server answers over HTTP and every listed image can be described and read, with its byte count. */
export async function checkConsistent (t: Test, server: PixelportServer, url: string): Promise<void> {
  const health = await send(url, 'GET', '/healthz')
  t.equal(health.status, 200, '/healthz answers 200 after the run')
  const listed = jsonOf<{ images: Array<{ id: string, byteLength: number }> }>(await send(url, 'GET', '/images'))
  t.same(listed.images.map((d) => d.id).sort(), server.store.ids().sort(), 'HTTP lists what the store holds')
  let bad = 0
  for (const d of listed.images) {
    const described = server.store.describe(d.id)
    const copy = await server.store.read(d.id)
    const res = await send(url, 'GET', imagePath(d.id, '/data'))
    const body = res.bytes
    const expected = described.shape.reduce((n, x) => n * x, 1) * Number(described.typestr.slice(2))
    if (described.byteLength !== expected || copy.bytes.byteLength !== expected || res.status !== 200 || body.byteLength !== expected) {
      bad++
      t.fail(`${d.id}: byteLength ${described.byteLength}, shape says ${expected}, read ${copy.bytes.byteLength}, HTTP ${res.status} ${body.byteLength}`)
    }
  }
  t.equal(bad, 0, `${listed.images.length} images describable and readable with the right byteLength`)
}

/**
 * Delete every image, then wait for the server to give everything back: image memory, snapshots, upload
 * staging, WebSocket connections. Call after closing every client.
 */
export async function checkNoLeaks (t: Test, server: PixelportServer): Promise<void> {
  // Views first would fail nothing, but deleting a parent deletes its views: go by whatever is left.
  for (let ids = server.store.ids(); ids.length > 0; ids = server.store.ids()) server.store.delete(ids[0])
  const ws = server.app.pixelportWebSocket
  const settled = (): boolean => {
    const s = server.store.stats()
    const snap = server.snapshots.stats()
    return s.used === 0 && s.images === 0 && s.views === 0 && s.retired === 0 && snap.snapshots === 0 && snap.bytes === 0 &&
      ws.connections === 0 && ws.stagingBytes === 0
  }
  try {
    await until(settled, { what: 'the server to give everything back', timeout: 10_000 })
  } catch {
    // Reported field by field below.
  }
  const s = server.store.stats()
  const snap = server.snapshots.stats()
  t.equal(s.used, 0, 'image memory back to zero')
  t.equal(s.dedicatedBlocks, 0, 'no dedicated block left')
  t.equal(s.images + s.views, 0, 'no image or view left')
  t.equal(snap.snapshots, 0, 'no snapshot left')
  t.equal(snap.bytes, 0, 'no snapshot bytes left')
  t.equal(ws.connections, 0, 'no WebSocket connection left')
  t.equal(ws.stagingBytes, 0, 'no upload staging bytes left')
  t.equal(s.retired, 0, 'no deleted image waiting for a lease')
  t.equal(server.store.table.slotsInUse, 0, 'no table slot left')
}

/** The same mix of images (modes, raw dtype, frames, line-based, a view) that every fuzz run starts from. */
export function seedImages (server: PixelportServer): void {
  const { store } = server
  store.create({ id: 'seed/l', width: 16, height: 16, mode: 'L' })
  store.create({ id: 'seed/rgb', width: 8, height: 8, mode: 'RGB' })
  store.create({ id: 'seed/f4', shape: [4, 4], typestr: '<f4' })
  store.create({ id: 'seed/frames', width: 8, height: 8, mode: 'L', frames: 3 })
  store.create({ id: 'seed/lines', width: 8, height: 8, mode: 'RGBA', layout: 'lines' })
  store.createView('seed/l', { id: 'seed/l/v', x: 2, y: 2, width: 4, height: 4 })
}
