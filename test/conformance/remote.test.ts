/**
 * The conformance suite (test/conformance/suite.ts) over the remote transport: RemoteClient on a real
 * WebSocket, the same behaviours the worker-thread client is held to.
 */
import t from 'tap'
import { RemoteClient } from '../../client/remote/index.js'
import { conformance, watchRemote, type ConformanceClient } from './suite.js'
import { startServer } from '../helpers/server.js'

function adapter (c: RemoteClient): ConformanceClient {
  return {
    create: async (spec, options) => await c.create(spec, options),
    list: async () => await c.list(),
    describe: async (id) => await c.describe(id),
    write: async (id, bytes) => (await c.put(id, bytes)).generation,
    read: async (id) => {
      const frame = await c.get(id)
      return { generation: frame.generation, bytes: frame.bytes }
    },
    delete: async (id) => await c.delete(id),
    watch: async () => await watchRemote(c),
    close: async () => await c.close(),
  }
}

conformance(t, {
  name: 'remote',
  async setup (t, count) {
    const { server, url } = await startServer(t)
    const clients = await Promise.all(Array.from({ length: count }, async () => await RemoteClient.connect(url.replace(/^http/, 'ws') + '/ws')))
    t.teardown(async () => { for (const c of clients) await c.close() })
    return { server, clients: clients.map(adapter) }
  },
})
