// The pieces adoption is built from: reserving runs in an allocator, adopting blocks and allocations in the
// arena, the meta file's names, and refusals for what is wrong outside the table (meta file, missing table).
import t from 'tap'
import { unlinkSync, writeFileSync } from 'node:fs'
import { Arena } from '../../server/memory/arena.js'
import { HeapBlockProvider } from '../../server/memory/block-provider.js'
import { RunAllocator } from '../../server/memory/run-allocator.js'
import { findAdoptable } from '../../server/memory/shm-adopt.js'
import { metaFileName, newStoreId, parseShmFileName, shmPath } from '../../shm/names.js'
import { createServer } from '../../server/server.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'

t.test('RunAllocator.reserve takes exactly a free range, and refuses one that is taken or unaligned', async (t) => {
  const a = new RunAllocator(1024)
  t.equal(a.reserve(128, 100), true)
  t.equal(a.lengthOf(128), 128, 'rounded to the alignment')
  t.same(a.freeRuns(), [{ offset: 0, length: 128 }, { offset: 256, length: 768 }])
  t.equal(a.reserve(192, 64), false, 'overlaps the first')
  t.equal(a.reserve(100, 64), false, 'unaligned')
  t.equal(a.reserve(960, 128), false, 'past the end')
  t.equal(a.reserve(0, 128), true)
  t.equal(a.reserve(896, 128), true)
  t.same(a.freeRuns(), [{ offset: 256, length: 640 }])
  a.free(128)
  t.same(a.freeRuns(), [{ offset: 128, length: 768 }], 'frees coalesce as usual')
})

t.test('Arena: adopted blocks and allocations, overlaps refused, unused dedicated blocks dropped', async (t) => {
  const provider = new HeapBlockProvider()
  const arena = new Arena({ provider, blockSize: 4096, capacity: 1 << 20 })
  arena.adoptBlock(0, provider.allocate(4096))
  arena.adoptBlock(3, provider.allocate(16384))
  arena.adoptBlock(5, provider.allocate(8192))
  t.same(arena.adoptAllocation(0, 64, 100), { block: 0, offset: 64, length: 128 })
  t.throws(() => arena.adoptAllocation(0, 128, 64), /not free/)
  t.throws(() => arena.adoptAllocation(9, 0, 64), /not free/)
  arena.adoptAllocation(3, 0, 16384)
  // Made by a server with a larger blockSize: a large block shared by two images.
  arena.adoptBlock(7, provider.allocate(16384))
  arena.adoptAllocation(7, 0, 64)
  arena.adoptAllocation(7, 8192, 64)
  arena.finishAdoption()
  t.same(arena.allBlocks().map((b) => [b.index, b.dedicated]), [[0, false], [3, true], [7, false]], 'block 5 (large, empty) released; 7 stays shared')
  arena.free({ block: 7, offset: 0, length: 64 })
  t.ok(arena.block(7), 'freeing one image of a shared large block keeps the block for the other')
  const next = arena.allocate(8192)
  t.equal(next.block, 8, 'new blocks come after the adopted ones')
  t.equal(arena.stats().used, 128 + 16384 + 64 + 8192)
})

t.test('meta file names parse back', async (t) => {
  const id = newStoreId()
  t.same(parseShmFileName('pxp', `pxp-${id}-meta`), { storeId: id, part: 'meta' })
  t.same(parseShmFileName('pxp', `pxp-${id}-metatmp`), { storeId: id, part: 'metatmp' })
  t.equal(metaFileName('pxp', id), `/pxp-${id}-meta`)
})

const loaded = shmAddon(t)
if (loaded !== null) {
  const OPTIONS = { port: 0, host: '127.0.0.1', capacity: 8 << 20, blockSize: 1 << 20, maxImages: 16, maxEventLoopDelayMs: 0 }
  async function kept (prefix: string): Promise<string> {
    const s = await createServer({ ...OPTIONS, shm: { prefix } })
    s.store.create({ id: 'l', width: 4, height: 3, mode: 'L', layout: 'lines' })
    await s.close({ keep: true })
    return s.shm.storeId!
  }

  t.test('an unreadable or foreign meta file refuses the store', async (t) => {
    const prefix = testPrefix(t)
    const storeId = await kept(prefix)
    writeFileSync(shmPath(metaFileName(prefix, storeId)), '{ not json')
    t.match(findAdoptable(prefix, loaded.addon).refused, [{ storeId, reason: /unreadable meta file/ }])
    writeFileSync(shmPath(metaFileName(prefix, storeId)), JSON.stringify({ version: 2, lines: {} }))
    t.match(findAdoptable(prefix, loaded.addon).refused, [{ storeId, reason: /is not a version 1 meta file/ }])
    unlinkSync(shmPath(metaFileName(prefix, storeId)))
    t.match(findAdoptable(prefix, loaded.addon).refused, [{ storeId, reason: /record 0: line-based image without its rows/ }])
  })

  t.test('a store without its table is not a candidate; a block that is missing refuses it', async (t) => {
    const prefix = testPrefix(t)
    const storeId = await kept(prefix)
    unlinkSync(`/dev/shm/${prefix}-${storeId}-0`)
    t.match(findAdoptable(prefix, loaded.addon).refused, [{ storeId, reason: /rows at block 0 offset 0 are outside the block/ }])
    unlinkSync(`/dev/shm/${prefix}-${storeId}-table`)
    t.same(findAdoptable(prefix, loaded.addon), { adopted: null, refused: [] })
    t.ok(shmFiles(prefix).length > 0)
  })
}
