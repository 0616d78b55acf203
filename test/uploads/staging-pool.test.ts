import t from 'tap'
import { StagingPool } from '../../server/uploads/staging-pool.js'

t.test('staging buffers are recycled by size, within the idle budget', async (t) => {
  const pool = new StagingPool(1000)
  const a = pool.take(400)
  t.equal(a.byteLength, 400)
  t.not(a.buffer, pool.take(400).buffer, 'nothing idle yet: a fresh buffer')
  pool.give(a)
  t.same(pool.stats(), { buffers: 1, bytes: 400, maxBytes: 1000 })
  t.equal(pool.take(300).byteLength, 300, 'another size is not served from a recycled buffer')
  t.equal(pool.take(400), a, 'the same size is')
  t.equal(pool.stats().bytes, 0)

  const b = pool.take(400)
  const c = pool.take(400)
  const d = pool.take(300)
  pool.give(b)
  pool.give(c)
  pool.give(d)
  t.same(pool.stats(), { buffers: 2, bytes: 700, maxBytes: 1000 }, 'the least recently returned went first')
  t.equal(pool.take(400), c)
  t.equal(pool.take(300), d)
  pool.give(pool.take(2000))
  t.equal(pool.stats().buffers, 0, 'a buffer over the budget is never kept')
  const none = new StagingPool(0)
  none.give(none.take(10))
  t.equal(none.stats().buffers, 0)
})
