/**
 * The session core (server/sessions/) as both transports see it: each serves its own ops and refuses the
 * other's, hello is once per session with the same version check, and however many sessions watch, the
 * store has one listener per change type (no MaxListenersExceededWarning at eleven workers).
 */
import type { MessagePort } from 'node:worker_threads'
import t from 'tap'
import { LAYOUT_VERSION } from '../../protocol/layout.js'
import type { PixelportServer } from '../../server/server.js'
import { helloLines } from '../helpers/attach-line-client.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

interface Reply { result?: any, error?: { code: string, message: string } }

/** A worker's side of a bridge channel, spoken by hand from this thread. */
function workerPort (server: PixelportServer): { ask: (op: string, fields?: object) => Promise<Reply>, port: MessagePort, events: any[] } {
  const port = server.workers.channel()
  const waiting = new Map<number, (r: Reply) => void>()
  const events: any[] = []
  port.on('message', (msg: any) => {
    if (msg.op === 'event') events.push(msg)
    else waiting.get(msg.req)?.(msg)
  })
  let req = 0
  return {
    port,
    events,
    ask: async (op, fields = {}) => await new Promise<Reply>((resolve) => {
      const id = ++req
      waiting.set(id, resolve)
      port.postMessage({ ...fields, op, req: id })
    }),
  }
}

t.test('a worker session: its ops, one hello, the attach-only ops refused', async (t) => {
  const { server } = await startServer(t)
  server.store.create({ id: 'w', width: 4, height: 4, mode: 'L' })
  const w = workerPort(server)
  t.teardown(() => w.port.close())
  const bad = await w.ask('hello', { protocol: 99, layoutVersion: LAYOUT_VERSION })
  t.match(bad.error, { code: 'PXP_ERR_PROTOCOL', message: /client speaks protocol 99/ }, 'a version the server does not speak')
  const welcome = (await w.ask('hello', { protocol: 1, layoutVersion: LAYOUT_VERSION })).result
  t.ok(welcome.table instanceof SharedArrayBuffer && welcome.claims instanceof SharedArrayBuffer, 'memory travels as SharedArrayBuffers')
  t.equal((await w.ask('hello', { protocol: 1, layoutVersion: LAYOUT_VERSION })).error?.code, 'PXP_ERR_PROTOCOL', 'one hello per session')
  t.match((await w.ask('describe', { id: 'w' })).result, { id: 'w' })
  t.equal((await w.ask('describe', { id: 'nowhere' })).error?.code, 'PXP_ERR_NOT_FOUND')
  for (const op of ['open', 'watch', 'begin', 'teleport', '__proto__']) {
    t.equal((await w.ask(op, { id: 'w', slot: 0, on: true })).error?.code, 'PXP_ERR_UNKNOWN_OP', `${op} is not a worker op`)
  }
  t.equal(server.store.table.leases(server.store.slotOf('w')), 0, 'no lease was taken on the worker\'s behalf')
  server.store.delete('w')
  await until(() => w.events.some((e) => e.type === 'deleted' && e.descriptor.id === 'w'), { what: 'the worker to hear of the delete without asking to watch' })
})

t.test('one store listener per change type for every watching session, none once they are gone', async (t) => {
  const { server } = await startServer(t)
  const before = server.store.listenerCount('updated')
  const workers = Array.from({ length: 12 }, () => workerPort(server))
  t.equal(server.store.listenerCount('updated'), before + 1, 'twelve workers, one listener')
  server.store.create({ id: 'e', width: 2, height: 2, mode: 'L' })
  await until(() => workers.every((w) => w.events.length === 1), { what: 'every worker to hear of the create' })
  for (const w of workers) w.port.close()
  await until(() => server.workers.connectionCount === 0, { what: 'the ports to close' })
  t.equal(server.store.listenerCount('updated'), before, 'the relay stops with the last watcher')
})

if (shmAddon(t) !== null) {
  t.test('an attach session: its ops, and block (a SharedArrayBuffer) refused', async (t) => {
    const { server } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'a', width: 4, height: 4, mode: 'L' })
    const c = await helloLines(server)
    t.teardown(() => c.socket.destroy())
    t.equal((await c.ask('block', { block: 0 })).error?.code, 'PXP_ERR_UNKNOWN_OP', 'blocks are mapped by segment name')
    const before = server.store.listenerCount('updated')
    t.same((await c.ask('watch', { on: true })).result, null)
    const w = workerPort(server)
    t.teardown(() => w.port.close())
    t.equal(server.store.listenerCount('updated'), before + 1, 'the attach watcher and the worker share one relay')
    server.store.create({ id: 'b', width: 2, height: 2, mode: 'L' })
    await until(() => c.events.length === 1 && w.events.length === 1, { what: 'both sessions to hear of the create' })
    t.match(c.events[0], { op: 'event', type: 'created', descriptor: { id: 'b' } })
  })
}
