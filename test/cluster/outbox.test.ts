/**
 * The catalog outbox and publisher: updates fold into one op per image, order is never changed, a failed
 * write is retried in order, and a fast writer does not flood Redis.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { EVENTS_KEY } from '../../server/cluster/keys.js'
import { Outbox, type CatalogOp } from '../../server/cluster/outbox.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/until.js'

function d (id: string, generation: number): ImageDescriptor {
  return { id, generation } as unknown as ImageDescriptor
}
const up = (id: string, g: number): CatalogOp => ({ type: 'updated', id, descriptor: d(id, g), coalesced: 0 })
const show = (ops: CatalogOp[]): string[] => ops.map((op) => `${op.type}:${op.id}` + (op.type === 'deleted' ? '' : `@${op.descriptor.generation}`))

t.test('updates fold into the op waiting for the same image; nothing is reordered', async (t) => {
  const box = new Outbox(100)
  box.push({ type: 'created', id: 'a', descriptor: d('a', 0), coalesced: 0 })
  box.push(up('b', 1))
  box.push(up('a', 1))
  box.push(up('a', 2))
  box.push(up('b', 2))
  t.same(show(box.take()), ['created:a@2', 'updated:b@2'], 'a created that is still waiting carries the newest descriptor')
  box.push(up('a', 3))
  box.push({ type: 'deleted', id: 'a' })
  box.push(up('a', 0))
  t.same(show(box.take()), ['updated:a@3', 'deleted:a', 'updated:a@0'], 'an update after a delete is not folded across it')
  t.equal(box.size, 0)
})

t.test('a failed write goes back in front, in order, and later updates still fold in', async (t) => {
  const box = new Outbox(100)
  box.push(up('a', 1))
  box.push(up('b', 1))
  const failed = box.take()
  box.push(up('c', 1))
  box.putBack(failed)
  box.push(up('a', 2))
  t.same(show(box.take()), ['updated:a@2', 'updated:b@1', 'updated:c@1'])
})

t.test('past its bound the outbox drops its ops and asks for a republish', async (t) => {
  const box = new Outbox(3)
  for (const id of ['a', 'b', 'c']) box.push({ type: 'deleted', id })
  t.equal(box.overflowed, false)
  box.push({ type: 'deleted', id: 'd' })
  t.equal(box.overflowed, true)
  t.same(show(box.take()), ['deleted:d'])
})

t.test('a fast writer does not flood Redis: commits coalesce, the last generation always arrives', async (t) => {
  const redis = await startRedis(t)
  const a = await startServer(t, { cluster: { redis: redis.url, nodeId: 'node-a', heartbeatMs: 100, ttlMs: 400, coalesceMs: 250 } })
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const image = a.server.store.create({ id: 'fast', width: 4, height: 4, mode: 'L' })
  const COMMITS = 100
  for (let g = 1; g <= COMMITS; g++) await a.server.store.write(image.id, new Uint8Array(16).fill(g))
  let entries: Array<[string, string[]]> = []
  await until(async () => {
    entries = await client.xrange(EVENTS_KEY, '-', '+')
    const last = entries.at(-1)?.[1]
    return last !== undefined && last[last.indexOf('g') + 1] === String(COMMITS)
  }, { what: 'the last commit to reach the stream', interval: 20 })
  const generations = entries.map(([, f]) => Number(f[f.indexOf('g') + 1]))
  t.ok(entries.length < COMMITS / 2, `${COMMITS} commits became ${entries.length} stream entries`)
  t.ok(generations.every((g, i) => i === 0 || g > generations[i - 1]), 'in commit order')
  t.equal(JSON.parse(await client.hget('pxp:catalog:node-a', 'fast') as string).generation, COMMITS, 'the catalog has the last generation')
})
