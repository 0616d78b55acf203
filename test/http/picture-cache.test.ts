/**
 * The picture cache (server/http/picture-cache.ts) on its own: bounded by entries and by bytes, least recently
 * used out first, no picture over a quarter of the byte budget, older generations dropped when a real store
 * commits, everything of an id dropped when it is deleted, and no encode kept that began before one.
 */
import t from 'tap'
import type { Encoded } from '../../server/formats/encode.js'
import { PictureCache } from '../../server/http/picture-cache.js'
import { newStore } from '../helpers/store.js'

const picture = (bytes: number): Encoded => ({ bytes: Buffer.alloc(bytes), sixteen: false, range: null })

t.test('bounded by entries and bytes, least recently used out first', async (t) => {
  const cache = new PictureCache(3, 1000)
  for (const key of ['a', 'b', 'c']) cache.set(key, key, 0, picture(100), cache.epoch)
  t.ok(cache.get('a') !== undefined, 'a used: b is now the oldest')
  cache.set('d', 'd', 0, picture(100), cache.epoch)
  t.same(cache.stats, { entries: 3, bytes: 300 })
  t.equal(cache.get('b'), undefined, 'the least recently used went first')
  t.ok(cache.get('a') !== undefined && cache.get('c') !== undefined && cache.get('d') !== undefined)

  cache.set('e', 'e', 0, picture(240), cache.epoch)
  cache.set('f', 'f', 0, picture(240), cache.epoch)
  t.ok(cache.stats.bytes <= 1000, `bytes stay within the budget (${cache.stats.bytes})`)
  cache.set('big', 'big', 0, picture(251), cache.epoch)
  t.equal(cache.get('big'), undefined, 'a picture over a quarter of the budget is not kept')
  cache.set('stale', 'stale', 0, picture(10), cache.epoch - 1)
  t.equal(cache.get('stale'), undefined, 'an encode that began before a create or delete is not kept')
})

t.test('follows a store: commits drop older generations, deletes drop the id', async (t) => {
  const store = newStore(t)
  const cache = new PictureCache()
  cache.follow(store)
  store.create({ id: 'img', width: 4, height: 4, mode: 'L' })
  store.create({ id: 'other', width: 4, height: 4, mode: 'L' })
  const g = store.generation('img')
  cache.set('img@g', 'img', g, picture(10), cache.epoch)
  cache.set('other@g', 'other', store.generation('other'), picture(10), cache.epoch)
  const epoch = cache.epoch
  await store.write('img', new Uint8Array(16).fill(1))
  t.ok(store.generation('img') > g)
  t.equal(cache.get('img@g'), undefined, 'a commit drops the older generation')
  t.ok(cache.get('other@g') !== undefined, 'other images keep theirs')
  store.delete('other')
  t.equal(cache.get('other@g'), undefined, 'a delete drops the id')
  t.ok(cache.epoch > epoch, 'and starts a new epoch')
})
