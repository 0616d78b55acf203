import t from 'tap'
import { startServer } from '../helpers/server.js'
import { startAgent } from '../helpers/agent.js'

t.test('a write in one worker is visible to another and to the server, zero-copy', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'a', width: 4, height: 2, mode: 'RGBA' })
  const [w1, w2] = await Promise.all([startAgent(server), startAgent(server)])
  await w1.call('open', 'a')
  await w2.call('open', 'a')
  const info = await w1.call('dataInfo', 'a')
  t.same(info, { length: 32, kind: 'Uint8Array', shared: true })
  const gen = await w1.call('setPixel', 'a', 1, 1, [10, 20, 30, 40])
  t.equal(gen, 1)
  t.same(await w2.call('pixel', 'a', 1, 1), [10, 20, 30, 40])
  const copy = await server.store.read('a')
  t.same(Array.from(copy.bytes.subarray(20, 24)), [10, 20, 30, 40])
  t.equal(copy.generation, 1)
  await w1.call('release', 'a')
  await w2.call('release', 'a')
  t.equal(server.store.table.leases(server.store.slotOf('a')), 0)
})
