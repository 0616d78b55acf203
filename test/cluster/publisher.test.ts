/**
 * server/cluster/publisher.ts over a real Redis: a node's commits reach the event stream in order, and a
 * reader that sees an event finds the catalog at least as new (the catalog writes go before the events
 * in each flush's pipeline), also while commits come faster than the coalescing window.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { catalogKey, EVENTS_KEY } from '../../server/cluster/keys.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'

t.test('every event finds the catalog at least as new as itself', async (t) => {
  const redis = await startRedis(t)
  const { server } = await startServer(t, { cluster: { redis: redis.url, nodeId: 'node-a', heartbeatMs: 100, ttlMs: 1500 } })
  server.store.create({ id: 'tick', width: 4, height: 4, mode: 'L' })
  const reader = new Redis(redis.url)
  t.teardown(() => reader.disconnect())
  const seen: Array<{ event: number, catalog: number }> = []
  let id = '0'
  let done = false
  const reading = (async () => {
    while (!done) {
      const reply = await reader.xread('COUNT', 100, 'BLOCK', 200, 'STREAMS', EVENTS_KEY, id) as Array<[string, Array<[string, string[]]>]> | null
      for (const [entryId, fields] of reply?.[0][1] ?? []) {
        id = entryId
        const field = (name: string): string => fields[fields.indexOf(name) + 1]
        if (field('i') !== 'tick' || field('t') !== 'updated') continue
        // Asked at once, on the same connection order as any node would: the catalog as of this event.
        const catalog = JSON.parse(await reader.hget(catalogKey('node-a'), 'tick') ?? '{}') as { generation?: number }
        seen.push({ event: Number(field('g')), catalog: catalog.generation ?? -1 })
      }
    }
  })()
  // Bursts faster than the 20 ms window (coalesced) and single commits after a pause (flushed at once).
  for (let burst = 0; burst < 10; burst++) {
    for (let i = 0; i < 5; i++) await server.store.write('tick', new Uint8Array(16).fill(i))
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  const last = server.store.generation('tick')
  const deadline = Date.now() + 10_000
  while (seen.at(-1)?.event !== last && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  done = true
  await reading
  t.equal(seen.at(-1)?.event, last, 'the last commit reached the stream')
  t.ok(seen.length > 1, `events from several flushes (${seen.length})`)
  t.ok(seen.every((s, i) => i === 0 || s.event > seen[i - 1].event), 'events in generation order')
  t.same(seen.filter((s) => s.catalog < s.event), [], 'no event ahead of the catalog')
})
