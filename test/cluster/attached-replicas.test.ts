/**
 * Attached processes reach the cluster's missing-image resolver, as worker threads do: two real nodes over a
 * real redis-server, B with shared memory; a process attached to B (pixelport/attach in a separate
 * process, and the line protocol spoken by hand as Python speaks it) describes or opens an image owned
 * by A and gets a local read-only replica.
 */
import t from 'tap'
import { HEADER, TABLE_FLAG } from '../../protocol/layout.js'
import { helloLines } from '../helpers/attach-line-client.js'
import { bytesOf, startAttachAgent } from '../helpers/attach-agent.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

// As in cluster.test.ts: a quick heartbeat, a TTL with room for a loaded machine's stalls.
const CLUSTER = { heartbeatMs: 100, ttlMs: 1500 }

/** Bytes 0, 1, 2, … (mod 251, plus `salt`): every offset distinguishable. */
function pattern (length: number, salt: number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (i + salt) % 251
  return bytes
}

if (shmAddon(t) !== null) {
  t.test('a process attached to B describes and opens images of A: replicas, bytes equal, owner named', async (t) => {
    const redis = await startRedis(t)
    const a = await startServer(t, { cluster: { redis: redis.url, nodeId: 'node-a', ...CLUSTER } })
    const b = await startServer(t, { shm: { prefix: testPrefix(t) }, cluster: { redis: redis.url, nodeId: 'node-b', ...CLUSTER } })
    const length = 32 * 16
    a.server.store.create({ id: 'cam/node', mode: 'L', width: 32, height: 16 }, pattern(length, 1))
    a.server.store.create({ id: 'cam/python', mode: 'L', width: 32, height: 16 }, pattern(length, 2))
    await until(async () => {
      const { images } = await (await fetch(`${b.url}/images?scope=cluster`)).json() as { images: Array<{ id: string }> }
      return images.length === 2
    }, { what: 'B to know both of A\'s images' })
    t.not(Atomics.load(b.server.store.table.words, HEADER.FLAGS) & TABLE_FLAG.ASK_MISSING, 0, 'B\'s table tells clients that open from shared memory to ask on a miss')

    // pixelport/attach: describe makes it local, then open finds it in the table.
    const agent = await startAttachAgent(t, b.url)
    t.match(await agent.call('describe', 'cam/node'), { id: 'cam/node', owner: 'node-a', readonly: true, copied: true, stale: false })
    t.ok(b.server.store.has('cam/node') && b.server.store.originOf('cam/node') !== undefined, 'B holds a replica')
    const opened = await agent.call('open', 'cam/node')
    t.match(opened, { id: 'cam/node', owner: 'node-a' })
    t.same(bytesOf((await agent.call('read', 'cam/node')).bytes), pattern(length, 1), 'the owner\'s pixels, read from B\'s shared memory')
    t.equal((await agent.fail('describe', 'nowhere')).code, 'PXP_ERR_NOT_FOUND', 'an id no node owns')

    // A commit on A reaches the attached process through the replica's refresh.
    await a.server.store.write('cam/node', pattern(length, 3))
    await agent.call('waitForChange', 'cam/node', opened.generation, 20_000)
    t.same(bytesOf((await agent.call('read', 'cam/node')).bytes), pattern(length, 3), 'the replica follows the owner')

    // The line protocol (Python): 'open' on the connection's behalf pulls the replica first.
    const lines = await helloLines(b.server)
    const reply = await lines.ask('open', { id: 'cam/python' })
    t.match(reply.result, { slot: Number, descriptor: { id: 'cam/python', owner: 'node-a', readonly: true } })
    t.equal(b.server.store.table.leases(reply.result.slot), 1, 'the lease is held for the connection')
    t.same((await b.server.store.read('cam/python')).bytes, pattern(length, 2))
    t.equal((await lines.ask('open', { id: 'nowhere' })).error?.code, 'PXP_ERR_NOT_FOUND')
    lines.socket.destroy()
    await lines.closed
    await until(() => b.server.store.table.leases(reply.result.slot) === 0, { what: 'the dropped connection\'s lease to be given back' })
  })
}
