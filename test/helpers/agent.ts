/**
 * Drive a real worker thread running test/fixtures/worker-agent.ts.
 */
import { once } from 'node:events'
import type { Worker } from 'node:worker_threads'
import type { PixelportServer } from '../../server/server.js'
import { commandClient } from './command-client.js'
import { BUILT, moduleUrl } from './paths.js'

export interface Agent {
  worker: Worker
  call<T = any> (cmd: string, ...args: unknown[]): Promise<T>
  /** Like call, but resolves to the error `{ code, message }` (rejects if the call succeeded). */
  fail (cmd: string, ...args: unknown[]): Promise<{ code: string, message: string }>
  exited: Promise<number>
}

/**
 * Run the agent from the build in a plain worker: starting a worker under a TypeScript loader costs seconds,
 * a plain one milliseconds. When the test itself runs from source, fall back to the source.
 */
function agentEntry (): { url: URL, execArgv: string[] } {
  return { url: moduleUrl('test/fixtures/worker-agent'), execArgv: BUILT ? [] : process.execArgv }
}

export async function startAgent (server: PixelportServer, options: { execArgv?: string[] } = {}): Promise<Agent> {
  const entry = agentEntry()
  const worker = server.spawnWorker(entry.url, { execArgv: [...entry.execArgv, ...(options.execArgv ?? [])] })
  const exited = once(worker, 'exit').then(([code]) => code as number)
  const client = commandClient((request) => worker.postMessage(request), exited.then((code) => `worker exited with ${code}`))
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject)
    worker.on('message', (msg) => {
      if (msg.ready === true) resolve()
      else client.deliver(msg)
    })
  })
  return { worker, exited, call: client.call, fail: client.fail }
}
