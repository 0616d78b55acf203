/**
 * Drive test/fixtures/fault-agent.ts: a real worker thread that takes hold of shared state and then dies
 * by process.exit, an uncaught exception, or worker.terminate() from here.
 */
import type { Worker } from 'node:worker_threads'
import type { Test } from 'tap'
import { SLOT, slotBase } from '../../protocol/layout.js'
import type { PixelportServer } from '../../server/server.js'
import { startAgent, type Agent } from './agent.js'
import { commandClient } from './command-client.js'
import { BUILT, moduleUrl } from './paths.js'
import { until } from './until.js'

export { SLOT }

export interface CrashingWorker {
  worker: Worker
  call<T = any> (cmd: string, ...args: unknown[]): Promise<T>
  /** Resolves when the worker reports it is inside write() with the lock held. */
  inside: Promise<void>
  /** The exit code, once the thread is gone. */
  exited: Promise<number>
}

/** The built fixture (starts in milliseconds) when the tests run built, else the source under the loader. */
function entry (): { url: URL, execArgv: string[] } {
  return { url: moduleUrl('test/fixtures/fault-agent'), execArgv: BUILT ? [] : process.execArgv }
}

export async function startCrashingWorker (server: PixelportServer): Promise<CrashingWorker> {
  const { url, execArgv } = entry()
  const worker = server.spawnWorker(url, { execArgv })
  // An uncaught exception in the worker is an 'error' event here; unhandled, it would take down the test.
  worker.on('error', () => {})
  // Not events.once: it would reject on the 'error' event of a worker that dies by an exception.
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
  const client = commandClient((request) => worker.postMessage(request), exited.then((code) => `worker exited with ${code}`))
  let signalInside!: () => void
  const inside = new Promise<void>((resolve) => { signalInside = resolve })
  const ready = new Promise<void>((resolve) => {
    worker.on('message', (msg) => {
      if (msg.ready === true) resolve()
      else if (msg.inside !== undefined) signalInside()
      else client.deliver(msg)
    })
  })
  await Promise.race([ready, exited.then((code) => { throw new Error(`fault agent exited with ${code} before it was ready`) })])
  return { worker, inside, exited, call: client.call }
}

export const BYSTANDER_FRAMES = 200

/** Two other workers hammering an unrelated image: one writes uniform frames, one counts torn reads. */
export async function bystanders (server: PixelportServer): Promise<{ writer: Agent, reader: Agent, run: () => Promise<{ torn: number, last: number }> }> {
  server.store.create({ id: 'bystander', width: 64, height: 64, mode: 'L' })
  const [writer, reader] = await Promise.all([startAgent(server), startAgent(server)])
  await writer.call('open', 'bystander')
  await reader.call('open', 'bystander')
  return {
    writer,
    reader,
    run: async () => {
      const [last, torn] = await Promise.all([
        writer.call<number>('writeFrames', 'bystander', BYSTANDER_FRAMES),
        reader.call<{ torn: number }>('readFrames', 'bystander', BYSTANDER_FRAMES),
      ])
      return { torn: torn.torn, last }
    },
  }
}

export function word (server: PixelportServer, id: string, field: number): number {
  return Atomics.load(server.store.table.words, slotBase(server.store.slotOf(id)) + field)
}

/** The crashed worker's connection is gone once the bridge counts only the bystanders. */
export async function recovered (server: PixelportServer, connections: number): Promise<void> {
  await until(() => server.workers.stats().connections === connections, { what: 'the crashed worker to be recovered' })
}

/**
 * `doomed`: a frame-buffered image the crashing worker pins and the server deletes before the crash. Its
 * memory can only come back through recovery of that pin and lease.
 */
export async function holdDoomed (t: Test, server: PixelportServer, w: CrashingWorker): Promise<number> {
  const before = server.store.stats().used
  server.store.create({ id: 'doomed', width: 128, height: 128, mode: 'L', frames: 2 })
  await w.call('open', 'doomed')
  await w.call('holdPin', 'doomed')
  server.store.delete('doomed')
  t.equal(server.store.stats().retired, 1, 'the deleted image is retired, its memory held by the worker')
  return before
}
