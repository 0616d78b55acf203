/**
 * SnapshotCache: one shared copy per generation, new copies for new generations, old ones dropped when
 * released, a byte budget that holds even under racing acquires, LRU eviction, and deleted images.
 */
import t, { type Test } from 'tap'
import type { ImageStore } from '../../server/store/image-store.js'
import { SnapshotCache, type Snapshot } from '../../server/store/snapshots.js'
import { newStore, seededBytes } from '../helpers/store.js'

const S = 4096

function setup (t: Test, maxBytes: number, ids = ['a']): { store: ImageStore, pixels: Map<string, Uint8Array>, cache: SnapshotCache } {
  const store = newStore(t)
  const pixels = new Map<string, Uint8Array>()
  ids.forEach((id, i) => {
    const bytes = seededBytes(S, i + 1)
    store.create({ id, mode: 'L', width: 64, height: 64 }, bytes)
    pixels.set(id, bytes)
  })
  return { store, pixels, cache: new SnapshotCache(store, maxBytes) }
}

function eq (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

t.test('concurrent acquires of one generation share one copy', async (t) => {
  const { cache, pixels } = setup(t, 10 * S)
  const snaps = await Promise.all(Array.from({ length: 5 }, () => cache.acquire('a')))
  t.match(cache.stats(), { copies: 1, shared: 4, snapshots: 1, bytes: S })
  t.ok(snaps.every((s) => s.bytes === snaps[0].bytes), 'the very same buffer')
  t.ok(snaps.every((s) => s.generation === 0 && s.descriptor.generation === 0 && s.id === 'a'))
  t.ok(eq(snaps[0].bytes, pixels.get('a')!), 'byte-exact')
  for (const s of snaps) s.release()
  // The latest generation stays cached while idle: the next reader gets it without a copy.
  const again = await cache.acquire('a')
  t.equal(again.bytes, snaps[0].bytes)
  t.match(cache.stats(), { copies: 1, shared: 5 })
  again.release()
  again.release()
  t.equal(cache.stats().snapshots, 1, 'release is idempotent')
})

t.test('a new generation makes a new copy; released old generations are dropped', async (t) => {
  const { store, cache, pixels } = setup(t, 10 * S)
  const old = await cache.acquire('a')
  const next = seededBytes(S, 50)
  await store.write('a', next)
  t.ok(eq(old.bytes, pixels.get('a')!), 'a held snapshot does not change under a write')
  const fresh = await cache.acquire('a')
  t.equal(fresh.generation, 1)
  t.ok(eq(fresh.bytes, next))
  t.match(cache.stats(), { copies: 2, snapshots: 2, bytes: 2 * S })
  const same = await cache.acquire('a', 0)
  t.equal(same.bytes, old.bytes, 'an old generation still held can be asked for by number')
  same.release()
  old.release()
  t.match(cache.stats(), { snapshots: 1, bytes: S }, 'the old generation is gone once nobody holds it')
  await t.rejects(cache.acquire('a', 0), { code: 'PXP_ERR_GENERATION_GONE', message: /Generation 0 of image "a"/ })
  await t.rejects(cache.acquire('a', 7), { code: 'PXP_ERR_GENERATION_GONE' }, 'a generation never written')
  // An idle latest snapshot is replaced, not kept beside the new one.
  fresh.release()
  await store.write('a', pixels.get('a')!)
  const third = await cache.acquire('a')
  t.equal(third.generation, 2)
  t.match(cache.stats(), { snapshots: 1, bytes: S })
  third.release()
})

t.test('the byte budget: PXP_ERR_SNAPSHOT_BUDGET while everything is held, LRU eviction of idle snapshots', async (t) => {
  const { cache } = setup(t, 2 * S, ['a', 'b', 'c'])
  const a = await cache.acquire('a')
  const b = await cache.acquire('b')
  const refused = await Promise.allSettled([cache.acquire('c'), cache.acquire('c')])
  t.same(refused.map((r) => r.status === 'rejected' && r.reason.code), ['PXP_ERR_SNAPSHOT_BUDGET', 'PXP_ERR_SNAPSHOT_BUDGET'], 'both waiters of a refused copy fail')
  t.match(cache.stats(), { snapshots: 2, bytes: 2 * S, copies: 2 }, 'a refused copy leaves nothing reserved and is not counted')
  b.release()
  a.release()
  // a was used before b, so a goes first.
  const c = await cache.acquire('c')
  t.match(cache.stats(), { snapshots: 2, bytes: 2 * S, copies: 3 })
  const b2 = await cache.acquire('b')
  t.equal(cache.stats().copies, 3, 'b was kept')
  c.release()
  b2.release()
  await cache.acquire('a')
  t.equal(cache.stats().copies, 4, 'a had been evicted')
  const tiny = setup(t, S - 1)
  await t.rejects(tiny.cache.acquire('a'), { code: 'PXP_ERR_SNAPSHOT_BUDGET' }, 'an image larger than the whole budget')
  t.match(tiny.cache.stats(), { snapshots: 0, bytes: 0 })
})

t.test('the budget holds whatever order racing acquires resolve in', async (t) => {
  // A copy that has finished but not yet been handed to its waiter must not look idle to the next copy.
  for (let delay = 0; delay < 8; delay++) {
    const { cache } = setup(t, S, ['a', 'c'])
    const results = await Promise.allSettled([
      cache.acquire('a'),
      (async () => {
        for (let i = 0; i < delay; i++) await null
        return await cache.acquire('c')
      })(),
    ])
    const held = results.filter((r): r is PromiseFulfilledResult<Snapshot> => r.status === 'fulfilled').map((r) => r.value)
    const bytes = new Set(held.map((s) => s.bytes)).size * S
    t.ok(bytes <= S, `delay ${delay}: ${held.length} snapshots held, ${bytes} bytes, budget ${S}`)
    t.equal(cache.stats().bytes, bytes, `delay ${delay}: the budget counts every held snapshot`)
    for (const r of results) if (r.status === 'rejected') t.equal(r.reason.code, 'PXP_ERR_SNAPSHOT_BUDGET')
    for (const s of held) s.release()
  }
})

t.test('deleted images: idle entries dropped, held ones when released', async (t) => {
  const { store, cache } = setup(t, 10 * S, ['a', 'b'])
  const held = await cache.acquire('a')
  ;(await cache.acquire('b')).release()
  t.equal(cache.stats().snapshots, 2)
  store.delete('b')
  t.match(cache.stats(), { snapshots: 1, bytes: S }, 'the idle snapshot of b is dropped at once')
  store.delete('a')
  t.equal(cache.stats().snapshots, 1, 'a is still being read')
  t.equal(held.bytes.byteLength, S, 'and its bytes stay valid')
  held.release()
  t.match(cache.stats(), { snapshots: 0, bytes: 0 })
  await t.rejects(cache.acquire('a'), { code: 'PXP_ERR_NOT_FOUND' })
})

t.test('snapshots of views and line-based images', async (t) => {
  const { store, cache, pixels } = setup(t, 10 * S)
  store.createView('a', { id: 'v', x: 0, y: 1, width: 64, height: 2 })
  const v = await cache.acquire('v')
  t.ok(eq(v.bytes, pixels.get('a')!.subarray(64, 192)))
  t.equal(v.descriptor.id, 'v')
  const lines = seededBytes(300, 9)
  store.create({ id: 'l', mode: 'RGB', width: 10, height: 10, layout: 'lines' }, lines)
  const l = await cache.acquire('l')
  t.ok(eq(l.bytes, lines))
  t.match(l.descriptor, { layout: 'lines', copied: true })
  v.release()
  l.release()
})
