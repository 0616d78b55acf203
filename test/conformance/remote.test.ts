/**
 * The conformance suite (test/conformance/suite.ts) over the remote transport: RemoteClient on a real
 * WebSocket, the same behaviours the worker-thread client is held to.
 */
import t from 'tap'
import { RemoteClient, type RemoteEvent } from '../../client/remote/index.js'
import { conformance, type ChangeEvent, type ConformanceClient } from './suite.js'
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
    watch: async () => {
      const sub = await c.subscribe({ policy: 'all' })
      let seen: ChangeEvent[] = []
      const pump = (async () => {
        for await (const e of sub as AsyncIterable<RemoteEvent>) seen.push({ type: e.type, id: e.id, generation: e.generation })
      })()
      return {
        take: async () => {
          const out = seen
          seen = []
          return out
        },
        stop: async () => {
          await sub.return()
          await pump
        },
      }
    },
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
