/**
 * How a client of the shared memory behaves when its connection ends, the same on both transports of the
 * client core (client/core/rpc.ts, store-base.ts): a worker thread over its MessagePort, and another process
 * over the attach socket.
 *
 * - Closing the store (or the server ending the connection) releases every open handle: they refuse use
 *   (PXP_ERR_NOT_LEASED), since the server takes their leases back and may reuse the memory. Pending waits
 *   end with PXP_ERR_CLOSED; the store refuses work with PXP_ERR_CLOSED.
 * - The holds on the connection (a change listener, a pending wait) are dropped when it fails: the thread or
 *   process then exits by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { Worker } from 'node:worker_threads'
import t, { type Test } from 'tap'
import type { PixelportServer } from '../../../server/server.js'
import { BUILT, moduleUrl } from '../../helpers/paths.js'
import { startServer } from '../../helpers/server.js'
import { childArgs, plainEnv, shmAddon, testPrefix } from '../../helpers/shm.js'
import { until } from '../../helpers/until.js'

const FIXTURE = 'test/fixtures/connection-end-client'

interface Client {
  /** The client's next message: `{ ready: true }`, then `{ report }`. */
  next: () => Promise<Record<string, any>>
  /** The exit code once the thread or process has ended, else null. */
  exitCode: () => number | null
}

type End = 'client' | 'signal' | 'server'

/** Messages in arrival order; once `failed`, waiting for one more rejects with the reason. */
function inbox (): { push: (m: Record<string, any>) => void, fail: (err: Error) => void, next: () => Promise<Record<string, any>> } {
  const queued: Array<Record<string, any>> = []
  const waiting: Array<{ resolve: (m: Record<string, any>) => void, reject: (err: Error) => void }> = []
  let failed: Error | null = null
  return {
    push: (m) => { const w = waiting.shift(); if (w !== undefined) w.resolve(m); else queued.push(m) },
    fail: (err) => { failed = err; for (const w of waiting.splice(0)) w.reject(err) },
    next: async () => {
      const m = queued.shift()
      if (m !== undefined) return m
      if (failed !== null) throw failed
      return await new Promise((resolve, reject) => waiting.push({ resolve, reject }))
    },
  }
}

/** The fixture in a worker thread connected with server.workerChannel() (not spawnWorker: nobody terminates it). */
function workerClient (server: PixelportServer, id: string, end: End): Client {
  const port = server.workerChannel()
  const worker = new Worker(moduleUrl(FIXTURE), {
    workerData: { pixelport: port, id, end },
    transferList: [port],
    execArgv: BUILT ? [] : process.execArgv,
  })
  const messages = inbox()
  let exitCode: number | null = null
  worker.on('message', messages.push)
  worker.on('error', messages.fail)
  worker.on('exit', (code) => {
    exitCode = code
    messages.fail(new Error(`worker exited with ${code}`))
  })
  return { next: messages.next, exitCode: () => exitCode }
}

/** The fixture in another process attached to `url`. */
function processClient (t: Test, url: string, id: string, end: End): Client & { child: ChildProcess } {
  const child = spawn(process.execPath, [...childArgs(FIXTURE), url, id, end], { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const messages = inbox()
  createInterface({ input: child.stdout! }).on('line', (line) => messages.push(JSON.parse(line)))
  // 'close', not 'exit': by then every line it wrote has been read.
  child.once('close', (code) => messages.fail(new Error(`process exited with ${code}:\n${stderr}`)))
  return { child, next: messages.next, exitCode: () => child.exitCode }
}

const CLOSED_REPORT = {
  wait: 'PXP_ERR_CLOSED',
  closed: true,
  released: true,
  read: 'PXP_ERR_NOT_LEASED',
  list: 'PXP_ERR_CLOSED',
  describe: 'PXP_ERR_CLOSED',
}

const transports: Array<{ name: string, start: (t: Test, server: PixelportServer, url: string, id: string, end: End) => Client }> = [
  { name: 'worker thread', start: (_t, server, _url, id, end) => workerClient(server, id, end) },
]
const shm = shmAddon(t) !== null
if (shm) {
  transports.push({ name: 'attached process', start: (t, _server, url, id, end) => processClient(t, url, id, end) })
}

for (const { name, start } of transports) {
  t.test(`${name}: close() releases the open handles and ends pending waits`, async (t) => {
    const { server, url } = await startServer(t, shm ? { shm: { prefix: testPrefix(t) } } : {})
    server.store.create({ id: 'held', width: 4, height: 4, mode: 'L' })
    const client = start(t, server, url, 'held', 'client')
    t.same(await client.next(), { ready: true })
    t.same((await client.next()).report, CLOSED_REPORT, 'the handle is released and refuses use; the store refuses work')
    await until(() => server.store.table.leases(server.store.slotOf('held')) === 0, { what: 'the server to take the lease back' })
    await until(() => client.exitCode() !== null, { what: `the ${name} to exit by itself` })
    t.equal(client.exitCode(), 0, 'nothing kept it alive after close')
  })

  t.test(`${name}: the server ending the connection drops its holds and releases the handles`, async (t) => {
    const { server, url } = await startServer(t, shm ? { shm: { prefix: testPrefix(t) } } : {})
    server.store.create({ id: 'held', width: 4, height: 4, mode: 'L' })
    const client = start(t, server, url, 'held', 'server')
    t.same(await client.next(), { ready: true })
    await server.close()
    t.same((await client.next()).report, CLOSED_REPORT, 'the handle is released and refuses use; the store refuses work')
    await until(() => client.exitCode() !== null, { what: `the ${name} to exit by itself, its change listener and wait notwithstanding` })
    t.equal(client.exitCode(), 0)
  })
}

if (shm) {
  t.test('attached process: close() drops its holds, so it exits while the server does not answer', async (t) => {
    // The server in a process of its own, so it can be stopped: the client's close() then sends a FIN nobody
    // answers, and the half-closed socket would keep the client alive were it still ref'd for the change
    // listener and the pending wait.
    const server = spawn(process.execPath, [...childArgs('test/fixtures/shm-server-child'), testPrefix(t)], { stdio: ['pipe', 'pipe', 'inherit'], env: plainEnv() })
    const exited = new Promise((resolve) => server.once('exit', resolve))
    t.teardown(async () => {
      server.kill('SIGKILL')
      await exited
    })
    const [line] = await once(createInterface({ input: server.stdout! }), 'line') as [string]
    const { url } = JSON.parse(line) as { url: string }
    const client = processClient(t, url, 'left-behind', 'signal')
    t.same(await client.next(), { ready: true })
    server.kill('SIGSTOP')
    client.child.kill('SIGUSR2')
    t.same((await client.next()).report, CLOSED_REPORT, 'closed while the server is stopped')
    await until(() => client.exitCode() !== null, { what: 'the attached process to exit with the server stopped' })
    t.equal(client.exitCode(), 0)
  })
}
