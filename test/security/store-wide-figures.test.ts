/**
 * Issue 12 item 5: `/stats`, `/cluster` and `/healthz` gave store-wide counts, and `/cluster` the Redis
 * URL, to tokens limited to a prefix. Store-wide figures are now for admin tokens and tokens for every id
 * only (403 for the others); `/healthz` stays public and gives a count only to those; `/metrics` is admin
 * only; and the Redis URL's credentials are never shown, not even to an admin.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { ADMIN, ALL_RW, A_READ, A_RW, call, TOKENS } from '../helpers/tokens.js'

t.test('/stats, /healthz and /metrics with prefix-limited tokens', async (t) => {
  const { server, url } = await startServer(t, { tokens: TOKENS })
  server.store.create({ id: 'b/one', width: 2, height: 2, mode: 'L' })
  server.store.create({ id: 'b/two', width: 2, height: 2, mode: 'L' })
  for (const token of [A_RW, A_READ]) {
    const stats = await call(`${url}/stats`, token)
    t.equal(stats.status, 403, '/stats refuses a token limited to a/*')
    t.equal(stats.body.code, 'PXP_ERR_FORBIDDEN')
    t.same((await call(`${url}/healthz`, token)).body, { ok: true }, '/healthz gives it no count')
    t.equal((await call(`${url}/metrics`, token)).status, 403, '/metrics is admin only')
  }
  t.same((await call(`${url}/healthz`, undefined)).body, { ok: true }, '/healthz without a token: no count')
  for (const token of [ADMIN, ALL_RW]) {
    const stats = await call(`${url}/stats`, token)
    t.equal(stats.status, 200, '/stats for an admin or every-id token')
    t.equal(stats.body.images, 2)
    t.same((await call(`${url}/healthz`, token)).body, { ok: true, images: 2 })
  }
  t.equal((await call(`${url}/metrics`, ADMIN)).status, 200)
})

t.test('/cluster: admin or every-id only, and never the Redis password', async (t) => {
  // Nothing listens on port 1: the node serves alone and /cluster reports Redis as unreachable.
  const redis = 'redis://pxp:hunter2@127.0.0.1:1/0?password=hunter3'
  const { url } = await startServer(t, { tokens: TOKENS, cluster: { redis, nodeId: 'solo', heartbeatMs: 100, ttlMs: 1500 } })
  const limited = await call(`${url}/cluster`, A_RW)
  t.equal(limited.status, 403, 'a token limited to a/* gets no node list or Redis address')
  t.notMatch(JSON.stringify(limited.body), /127\.0\.0\.1:1|hunter/)
  for (const token of [ADMIN, ALL_RW]) {
    const status = await call(`${url}/cluster`, token)
    t.equal(status.status, 200)
    t.equal(status.body.node, 'solo')
    t.notMatch(JSON.stringify(status.body), /hunter2|hunter3/, 'no password, in the userinfo or the query')
    t.match(status.body.redis.url, /^redis:\/\/pxp:\*\*\*@127\.0\.0\.1:1\/0\?password=\*\*\*$/)
  }
})
