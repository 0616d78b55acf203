import t from 'tap'
import { startServer } from './helpers/server.js'

t.test('healthz answers', async (t) => {
  const { url } = await startServer(t)
  const res = await fetch(url + '/healthz')
  t.equal(res.status, 200)
  t.same(await res.json(), { ok: true, images: 0 })
})
