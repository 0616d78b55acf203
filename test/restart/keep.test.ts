// close({ keep: true }) leaves the segments, and the next createServer({ shm: { recover: true } }) adopts them:
// every image, id, mode, shape, layout, view, frame count, read-only flag, generation and byte comes back.
import t from 'tap'
import { closeSync, existsSync, openSync, writeSync } from 'node:fs'
import { SLOT, slotBase } from '../../protocol/layout.js'
import { createServer } from '../../server/server.js'
import { fingerprints, populate } from '../helpers/restart-images.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'
import { call } from '../helpers/http.js'

const loaded = shmAddon(t)
const OPTIONS = { port: 0, host: '127.0.0.1', capacity: 64 << 20, blockSize: 1 << 20, maxImages: 256, maxEventLoopDelayMs: 0 }

if (loaded !== null) {
  t.test('kept at close, adopted at the next start, then still usable', async (t) => {
    const prefix = testPrefix(t)
    const first = await createServer({ ...OPTIONS, shm: { prefix } })
    await populate(first.store, 100)
    first.store.delete('lines/L')
    const before = await fingerprints(first.store)
    t.equal(before.length, 99, '100 images, one deleted')
    const storeId = first.shm.storeId
    await first.close({ keep: true })
    t.ok(shmFiles(prefix).some((f) => f.endsWith('-table')), 'the table stays')
    t.notOk(shmFiles(prefix).some((f) => f.endsWith('-attach')), 'the socket goes')

    const second = await createServer({ ...OPTIONS, shm: { prefix, recover: true } })
    t.teardown(() => second.close())
    const url = await second.listen()
    t.equal(second.shm.storeId, storeId, 'same store id: every segment name stays valid')
    t.equal(second.recovery.adopted?.images, 99, 'all 99 adopted')
    t.same(second.recovery.refused, [])
    t.same(await fingerprints(second.store), before, 'every image with the same bytes, generation, mode, layout, view')
    // The adopted store works like any: writes, deletes (memory freed), creates (no overlap with adopted memory).
    const listed = await call(url, 'GET', '/images')
    t.equal(listed.status, 200)
    const d = await second.store.write('frames/RGB', new Uint8Array(second.store.describe('frames/RGB').byteLength).fill(7))
    t.equal(d.generation, before.find((f) => f.id === 'frames/RGB')!.generation + 1)
    second.store.delete('lines/RGB')
    for (let i = 0; i < 20; i++) second.store.create({ id: `new/${i}`, width: 64, height: 64, mode: 'RGBA' }, new Uint8Array(64 * 64 * 4).fill(i))
    const after = await fingerprints(second.store)
    for (const f of before) {
      if (f.id === 'frames/RGB' || f.view?.parent === 'frames/RGB' || f.id === 'lines/RGB') continue
      t.same(after.find((a) => a.id === f.id), f, `${f.id} untouched by the new images`)
    }
    await second.close()
    t.same(shmFiles(prefix), [], 'a clean shutdown after adoption leaves nothing')
    t.notOk(existsSync(`/dev/shm/${prefix}-${storeId}-meta`))
  })

  t.test('without recover, kept segments are removed as stale and the log names --recover', async (t) => {
    const prefix = testPrefix(t)
    const first = await createServer({ ...OPTIONS, shm: { prefix } })
    first.store.create({ id: 'a', width: 4, height: 4, mode: 'L' })
    await first.close({ keep: true })
    const second = await createServer({ ...OPTIONS, shm: { prefix } })
    t.teardown(() => second.close())
    t.equal(second.store.size, 0)
    t.same(second.recovery.removedStale, [first.shm.storeId])
    t.match(second.recovery.notes.map((n) => n.message).join('\n'), /start with --recover/)
  })

  t.test('a seqlock left odd (a late writer cut off from the dead server) is closed as a new generation', async (t) => {
    const prefix = testPrefix(t)
    const first = await createServer({ ...OPTIONS, shm: { prefix } })
    first.store.create({ id: 'a', width: 4, height: 4, mode: 'L' }, new Uint8Array(16).fill(1))
    await first.close({ keep: true })
    const fd = openSync(`/dev/shm/${prefix}-${first.shm.storeId}-table`, 'r+')
    const odd = Buffer.alloc(4)
    odd.writeInt32LE(1)
    writeSync(fd, odd, 0, 4, (slotBase(0) + SLOT.SEQ) * 4)
    closeSync(fd)
    const second = await createServer({ ...OPTIONS, shm: { prefix, recover: true }, lockTimeoutMs: 200 })
    t.teardown(() => second.close())
    t.equal(second.recovery.adopted?.tornWritesClosed, 1)
    const copy = await second.store.read('a')
    t.equal(copy.generation, 1)
    t.ok(copy.bytes.every((b) => b === 1))
  })

  t.test('adopted by a server with a smaller block size: freeing one image keeps its neighbours', async (t) => {
    const prefix = testPrefix(t)
    const first = await createServer({ ...OPTIONS, shm: { prefix } })
    await populate(first.store, 30)
    const before = await fingerprints(first.store)
    await first.close({ keep: true })
    const second = await createServer({ ...OPTIONS, blockSize: 64 * 1024, shm: { prefix, recover: true } })
    t.teardown(() => second.close())
    second.store.delete('block/1')
    second.store.delete('lines/1')
    for (let i = 0; i < 10; i++) second.store.create({ id: `new/${i}`, width: 32, height: 32, mode: 'L' }, new Uint8Array(1024).fill(200 + i))
    const after = await fingerprints(second.store)
    t.same(after.filter((f) => !f.id.startsWith('new/')), before.filter((f) => f.id !== 'block/1' && f.view?.parent !== 'block/1' && f.id !== 'lines/1'))
    const segments = new Set(second.store.list().flatMap((d) => d.location.kind === 'block' ? [d.location.segment] : d.location.segments.map((r) => r.segment)))
    for (const name of segments) t.ok(existsSync('/dev/shm' + String(name)), `${String(name)} still exists: other processes can map it by name`)
  })
}
