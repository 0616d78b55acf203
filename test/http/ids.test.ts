import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, upload } from '../helpers/http.js'

t.test('ids with "/" travel percent-encoded as one path segment on every route', async (t) => {
  const { url, server } = await startServer(t)
  const id = 'site-a/cam1/frame_0.raw'
  const encoded = encodeURIComponent(id)
  t.equal(encoded, 'site-a%2Fcam1%2Fframe_0.raw')
  const bytes = randomBytes(6 * 4)
  const created = await upload(url, { width: 6, height: 4, mode: 'L', id }, bytes)
  t.equal(created.status, 201)
  t.equal(created.body.id, id)
  t.equal(created.headers.get('location'), `/images/${encoded}`)
  t.ok(server.store.has(id), 'stored under the decoded id')

  t.equal((await call(url, 'GET', `/images/${encoded}`)).body.id, id)
  // Lower-case escapes are the same id.
  t.equal((await call(url, 'GET', `/images/${encoded.replace(/%2F/g, '%2f')}`)).body.id, id)
  t.ok(Buffer.from((await download(url, id)).bytes).equals(bytes))
  const next = randomBytes(6 * 4)
  t.equal((await put(url, id, next)).status, 200)
  t.ok(Buffer.from((await download(url, id)).bytes).equals(next))
  const view = await call(url, 'POST', `/images/${encoded}/views`, { x: 1, y: 1, width: 2, height: 2, id: `${id}/roi` })
  t.equal(view.status, 201)
  t.equal(view.body.base, id)
  t.equal(view.headers.get('location'), `/images/${encodeURIComponent(`${id}/roi`)}`)
  t.same((await call(url, 'GET', '/images')).body.images.map((d: { id: string }) => d.id), [id, `${id}/roi`])
  t.equal((await call(url, 'DELETE', `/images/${encoded}`)).status, 204)
  t.equal(server.store.size, 0)
  // The longest legal id works; one more character is PXP_ERR_BAD_ID.
  const longest = 'a/'.repeat(63) + 'ab'
  t.equal(longest.length, 128)
  t.equal((await call(url, 'POST', '/images', { width: 1, height: 1, mode: 'L', id: longest })).status, 201)
  t.equal((await download(url, longest)).status, 200)
  t.equal((await call(url, 'GET', `/images/${encodeURIComponent(longest + 'c')}/data`)).body.code, 'PXP_ERR_BAD_ID')
})
