/**
 * The eviction policy (`evict: 'lru'`): off by default; least recently used idle images go first, only as
 * many as the new image needs; images held by anyone (lease, pin, loan, write lock, view, snapshot in use)
 * are never evicted; when even evicting every idle image would not make room, nothing is evicted.
 *
 * Holds are taken with the very protocol steps a worker thread runs on the shared control words
 * (protocol/sync.ts, ImageTable.addLeases); test/http/eviction.test.ts holds one with a real worker.
 */
import t from 'tap'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { loanFrame, pinFront, tryLock, unlock, unpin, cancelLoan } from '../../protocol/sync.js'
import type { EvictionReason } from '../../server/store/eviction.js'
import type { ImageStore } from '../../server/store/image-store.js'
import { SnapshotCache } from '../../server/store/snapshots.js'
import { expectUnchanged, newStore, seededBytes } from '../helpers/store.js'

const KiB = 1024
/** 64 KiB blocks, room for four 64 KiB images. */
const SMALL = { blockSize: 64 * KiB, capacity: 256 * KiB }
/** One image fills one block. */
const IMAGE = { shape: [256, 256], typestr: '|u1' }
/** Two fit in a block. */
const HALF = { shape: [128, 256], typestr: '|u1' }

function fill (store: ImageStore, ids: string[], spec: { shape: number[], typestr: string } = IMAGE): void {
  for (const id of ids) store.create({ ...spec, id })
}

/** Every `evicted` event as [id, reason], and every `deleted` descriptor. */
function watch (store: ImageStore): { evicted: Array<[string, EvictionReason]>, deleted: ImageDescriptor[] } {
  const seen = { evicted: [] as Array<[string, EvictionReason]>, deleted: [] as ImageDescriptor[] }
  store.on('evicted', (d, why) => seen.evicted.push([d.id, why]))
  store.on('deleted', (d) => seen.deleted.push(d))
  return seen
}

t.test('off by default: a full store refuses with 507 and stays as it was', async (t) => {
  const store = newStore(t, SMALL)
  t.equal(store.evictPolicy, 'none')
  fill(store, ['a', 'b', 'c', 'd'])
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ ...IMAGE, id: 'e' }))
  const few = newStore(t, { ...SMALL, maxImages: 2 })
  fill(few, ['a', 'b'], HALF)
  await expectUnchanged(t, few, 'PXP_ERR_TOO_MANY_IMAGES', () => few.create({ ...HALF, id: 'c' }))
  await expectUnchanged(t, few, 'PXP_ERR_TOO_MANY_IMAGES', () => few.createView('a', { x: 0, y: 0, width: 1, height: 1, id: 'v' }))
})

t.test('an unknown policy is refused by name', async (t) => {
  t.throws(() => newStore(t, { evict: 'fifo' as never }), { code: 'PXP_ERR_VALIDATION', message: /evict/ })
})

t.test('lru: the least recently used image goes first, only as many as needed, and says so', async (t) => {
  const store = newStore(t, { ...SMALL, evict: 'lru' })
  const seen = watch(store)
  fill(store, ['a', 'b', 'c', 'd'])
  await store.read('a') // a read: a is now the most recently used
  await store.write('b', seededBytes(64 * KiB, 2)) // a commit is a use too
  const e = store.create({ ...IMAGE, id: 'e' }, seededBytes(64 * KiB, 5))
  t.equal(e.id, 'e')
  t.same(seen.evicted, [['c', { code: 'PXP_ERR_CAPACITY', for: 'e' }]], 'c, the least recently used, went; nothing else')
  t.same(store.ids().sort(), ['a', 'b', 'd', 'e'])
  t.match(seen.deleted, [{ id: 'c', evicted: true }], 'subscribers hear a deleted event that says evicted')
  t.same((await store.read('e')).bytes, seededBytes(64 * KiB, 5), 'the new image holds its own pixels')
  // A store-side touch (a snapshot served, a region copied) counts like a read.
  store.touch('d')
  store.touch('gone') // unknown ids are ignored
  store.create({ ...IMAGE, id: 'f' })
  t.same(seen.evicted.map(([id]) => id), ['c', 'a'], 'then a: b was written and d touched after it was read')
  // A bigger image takes as many as it needs, oldest first (b written, e created, d touched, f created).
  store.create({ shape: [512, 256], typestr: '|u1', id: 'g' })
  t.same(seen.evicted.map(([id]) => id), ['c', 'a', 'b', 'e'])
  t.same(store.ids().sort(), ['d', 'f', 'g'])
  t.equal(store.stats().retired, 0, 'evicted memory was given back at once')
})

t.test('lru also makes room for slots (maxImages), for images and views', async (t) => {
  const store = newStore(t, { ...SMALL, maxImages: 3, evict: 'lru' })
  const seen = watch(store)
  fill(store, ['a', 'b', 'c'], HALF)
  await store.read('a')
  store.create({ ...HALF, id: 'd' })
  t.same(seen.evicted, [['b', { code: 'PXP_ERR_TOO_MANY_IMAGES', for: 'd' }]])
  // A view needs a slot, never the slot of its own parent.
  store.touch('c')
  store.touch('d')
  store.createView('a', { x: 0, y: 0, width: 8, height: 8, id: 'a/roi' })
  t.same(seen.evicted.map(([id]) => id), ['b', 'c'], 'c, not a: the parent of the new view stays though it is the oldest')
  t.same(store.ids().sort(), ['a', 'a/roi', 'd'])
})

t.test('an image with views is never evicted; a view is, and frees its slot only', async (t) => {
  const store = newStore(t, { ...SMALL, maxImages: 4, evict: 'lru' })
  const seen = watch(store)
  fill(store, ['a', 'b'])
  store.createView('a', { x: 0, y: 0, width: 4, height: 4, id: 'a/v' })
  fill(store, ['c'])
  // Memory: a (has a view), then b. b goes.
  store.create({ ...IMAGE, id: 'd' })
  t.same(seen.evicted.map(([id]) => id), ['b'])
  // Slots: a/v is the oldest that may go (a has a view); its parent stays.
  await store.read('c')
  await store.read('d')
  store.create({ shape: [1], typestr: '|u1', id: 'tiny' })
  t.same(seen.evicted.map(([id]) => id), ['b', 'a/v'])
  t.ok(store.has('a'))
})

t.test('an image anyone holds is never evicted, however old', async (t) => {
  const store = newStore(t, { ...SMALL, capacity: 320 * KiB, evict: 'lru' })
  const seen = watch(store)
  const words = store.table.words
  fill(store, ['lease', 'write'])
  store.create({ ...HALF, id: 'pin', frames: 2 })
  store.create({ ...HALF, id: 'loan', frames: 2 })
  store.create({ ...IMAGE, id: 'free' })
  // A worker's open handle (a lease), the write lock, a pinned frame, a loaned frame: each on one image.
  store.table.addLeases(store.slotOf('lease'), 1)
  t.ok(tryLock(words, store.slotOf('write'), 7))
  const pinned = pinFront(words, store.slotOf('pin'))!
  const loaned = loanFrame(words, store.slotOf('loan'))
  t.ok(pinned !== null && loaned >= 0)

  store.create({ ...IMAGE, id: 'new' })
  t.same(seen.evicted.map(([id]) => id), ['free'], 'the one idle image went though it is the newest')
  store.table.addLeases(store.slotOf('new'), 1)
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ ...IMAGE, id: 'more' }),
    'every image held: no room, nothing evicted')
  t.same(seen.evicted.map(([id]) => id), ['free'])

  // Given back, each becomes evictable again (a held image counted as used when last seen held).
  store.table.addLeases(store.slotOf('lease'), -1)
  unlock(words, store.slotOf('write'), 7)
  unpin(words, store.slotOf('pin'), pinned.frame)
  cancelLoan(words, store.slotOf('loan'), loaned)
  store.table.addLeases(store.slotOf('new'), -1)
  store.touch('new')
  store.create({ ...IMAGE, id: 'more' })
  store.create({ ...IMAGE, id: 'most' })
  // They were last seen held (in that order) when 'more' was refused; 'new' was touched after.
  t.same(seen.evicted.map(([id]) => id), ['free', 'lease', 'write'])
  t.ok(store.has('new'), 'the most recently used stays')
})

t.test('not enough evictable memory: 507 and nothing evicted', async (t) => {
  const store = newStore(t, { ...SMALL, evict: 'lru' })
  fill(store, ['a', 'b', 'c', 'd'])
  store.table.addLeases(store.slotOf('b'), 1)
  store.table.addLeases(store.slotOf('c'), 1)
  store.table.addLeases(store.slotOf('d'), 1)
  // Three blocks' worth needed; only a (one block) could go.
  await expectUnchanged(t, store, 'PXP_ERR_CAPACITY', () => store.create({ shape: [768, 256], typestr: '|u1', id: 'big' }))
  // Slots: the same rule.
  const few = newStore(t, { ...SMALL, maxImages: 2, evict: 'lru' })
  fill(few, ['a', 'b'], HALF)
  few.table.addLeases(few.slotOf('a'), 1)
  few.table.addLeases(few.slotOf('b'), 1)
  await expectUnchanged(t, few, 'PXP_ERR_TOO_MANY_IMAGES', () => few.create({ ...HALF, id: 'c' }))
  // Other refusals are never turned into evictions.
  const full = newStore(t, { ...SMALL, evict: 'lru' })
  fill(full, ['a', 'b', 'c', 'd'])
  await expectUnchanged(t, full, 'PXP_ERR_TOO_LARGE', () => full.create({ shape: [1024, 1024], typestr: '|u1', id: 'huge' }))
  await expectUnchanged(t, full, 'PXP_ERR_ALREADY_EXISTS', () => full.create({ ...IMAGE, id: 'a' }))
})

t.test('fragmentation: the allocator decides, not a byte count', async (t) => {
  // Eight half-block images, two per block. A 2-frame image needs one whole block in one run.
  const store = newStore(t, { ...SMALL, evict: 'lru' })
  const seen = watch(store)
  const ids = ['a0', 'a1', 'b0', 'b1', 'c0', 'c1', 'd0', 'd1']
  fill(store, ids, HALF)
  // Least recently used: one half of every block first, then the other halves.
  for (const id of ['a0', 'b0', 'c0', 'd0', 'a1', 'b1', 'c1', 'd1']) store.touch(id)
  store.create({ ...HALF, frames: 2, id: 'movie' })
  // Two evictions free enough bytes but no run: the plan went on until a block was whole.
  t.same(seen.evicted.map(([id]) => id), ['a0', 'b0', 'c0', 'd0', 'a1'])
  t.equal(store.describe('movie').layout, 'block')

  // When no sequence of evictions makes a run (every other half held), nothing goes.
  const held = newStore(t, { ...SMALL, evict: 'lru' })
  fill(held, ids, HALF)
  for (const id of ['a1', 'b1', 'c1', 'd1']) held.table.addLeases(held.slotOf(id), 1)
  await expectUnchanged(t, held, 'PXP_ERR_CAPACITY', () => held.create({ ...HALF, frames: 2, id: 'movie' }))
  // A plain image of the same size is placed line by line in the freed pieces instead.
  const seenHeld = watch(held)
  held.create({ shape: [256, 256], typestr: '|u1', id: 'plain' })
  t.same(seenHeld.evicted.map(([id]) => id), ['a0', 'b0'])
  t.equal(held.describe('plain').layout, 'lines')
})

t.test('an image whose snapshot a remote reader holds is not evicted', async (t) => {
  const store = newStore(t, { ...SMALL, evict: 'lru' })
  const snapshots = new SnapshotCache(store, 1024 * KiB)
  const seen = watch(store)
  fill(store, ['a', 'b', 'c', 'd'])
  const snap = await snapshots.acquire('a')
  // acquire() was a use of a; make it the oldest again, still held by the snapshot.
  for (const id of ['b', 'c', 'd']) store.touch(id)
  store.create({ ...IMAGE, id: 'e' })
  t.same(seen.evicted.map(([id]) => id), ['b'], 'a is streamed from: b went')
  snap.release()
  for (const id of ['c', 'd', 'e']) store.touch(id)
  store.create({ ...IMAGE, id: 'f' })
  t.same(seen.evicted.map(([id]) => id), ['b', 'a'], 'released, a may go')
})

t.test('commits made through shared memory count as uses (seen by the commit watcher)', async (t) => {
  const store = newStore(t, { ...SMALL, evict: 'lru' })
  const seen = watch(store)
  fill(store, ['a', 'b', 'c', 'd'])
  // What a worker's write does: lock, seqlock, unlock, notify — no message to the server.
  const { beginWrite, endWrite } = await import('../../protocol/sync.js')
  const words = store.table.words
  const slot = store.slotOf('a')
  t.ok(tryLock(words, slot, 3))
  beginWrite(words, slot)
  endWrite(words, slot)
  unlock(words, slot, 3)
  const updated = new Promise<void>((resolve) => store.on('updated', (d) => { if (d.id === 'a') resolve() }))
  store.table.notifyCommit(slot)
  await updated
  store.create({ ...IMAGE, id: 'e' })
  t.same(seen.evicted.map(([id]) => id), ['b'])
})
