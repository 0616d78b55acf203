/**
 * The conformance suite over the worker-thread transport: every operation runs in a real worker thread
 * through `pixelport/worker`.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { startAgent, type Agent } from '../helpers/agent.js'
import { conformance, type ConformanceClient } from './suite.js'

function adapter (agent: Agent): ConformanceClient {
  return {
    create: async (spec, options) => await agent.call('create', spec, options),
    list: async () => await agent.call('list'),
    describe: async (id) => await agent.call('describeOpen', id),
    write: async (id, bytes) => await agent.call('writeBytes', id, bytes),
    read: async (id) => {
      const r = await agent.call('readBytes', id)
      return { generation: r.generation, bytes: r.bytes }
    },
    delete: async (id) => { await agent.call('delete', id) },
    watch: async () => {
      await agent.call('events') // start from now
      return { take: async () => await agent.call('events'), stop: async () => {} }
    },
    close: async () => { await agent.call('exit') },
  }
}

conformance(t, {
  name: 'worker',
  async setup (t, count) {
    const { server } = await startServer(t)
    const agents = await Promise.all(Array.from({ length: count }, async () => await startAgent(server)))
    return { server, clients: agents.map(adapter) }
  },
})
