/**
 * Issue 12 item 5: `/images/x.png` is the PNG of `x`, or — when `x` is no image but `x.png` is — the
 * descriptor of `x.png`. The auth hook checks `x` (the route's id); a token limited to `x` used to read
 * the descriptor of `x.png` through that fallback and learn whether it exists. Now the fallback is taken
 * only for a caller who may read `x.png` itself; anyone else gets the same 404 as if it did not exist.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { ADMIN, call } from '../helpers/tokens.js'

const ONLY_X = 'x'.repeat(32)
const tokens = [
  { token: ADMIN, scopes: ['admin' as const] },
  { token: ONLY_X, scopes: ['read' as const], ids: ['x'] },
]

t.test('a token limited to x learns nothing of x.png', async (t) => {
  const { server, url } = await startServer(t, { tokens })
  const absent = await call(`${url}/images/x.png`, ONLY_X)
  server.store.create({ id: 'x.png', width: 2, height: 2, mode: 'L' })
  const present = await call(`${url}/images/x.png`, ONLY_X)
  t.equal(present.status, 404, 'no descriptor of x.png')
  t.equal(present.body.code, 'PXP_ERR_NOT_FOUND')
  t.same(present.body, absent.body, 'the same answer whether x.png exists or not')
  t.equal(present.status, absent.status)
  t.notMatch(JSON.stringify(present.body), /x\.png/, 'the answer does not name x.png')

  const admin = await call(`${url}/images/x.png`, ADMIN)
  t.equal(admin.status, 200, 'a token that may read x.png still gets its descriptor')
  t.equal(admin.body.id, 'x.png')

  server.store.create({ id: 'x', width: 2, height: 2, mode: 'L' })
  const picture = await fetch(`${url}/images/x.png`, { headers: { authorization: `Bearer ${ONLY_X}` } })
  t.equal(picture.status, 200, 'the PNG of x itself is still served')
  t.equal(picture.headers.get('content-type'), 'image/png')
})
