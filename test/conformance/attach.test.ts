/**
 * The conformance suite over `pixelport/attach`: every operation runs in a real separate Node.js process
 * that maps the server's shared memory, with the same behaviour as worker threads and remote clients.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { agentPool, bytesOf, type AttachAgent } from '../helpers/attach-agent.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { conformance, type ConformanceClient } from './suite.js'

function adapter (agent: AttachAgent): ConformanceClient {
  return {
    create: async (spec, options) => await agent.call('create', spec, options),
    list: async () => await agent.call('list'),
    describe: async (id) => await agent.call('describeOpen', id),
    write: async (id, bytes) => await agent.call('writeBytes', id, Buffer.from(bytes).toString('base64')),
    read: async (id) => {
      const r = await agent.call('readBytes', id)
      return { generation: r.generation, bytes: bytesOf(r.bytes) }
    },
    delete: async (id) => { await agent.call('delete', id) },
    watch: async () => {
      await agent.call('events')
      return { take: async () => await agent.call('events'), stop: async () => { await agent.call('unwatch') } }
    },
    close: async () => { await agent.call('close') },
  }
}

if (shmAddon(t) !== null) {
  // Two agent processes serve every subtest, one subtest at a time.
  const agents = agentPool(t)
  conformance(t, {
    name: 'attach',
    async setup (t, count) {
      const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
      return { server, clients: (await agents(t, url, count)).map(adapter) }
    },
  })
}
