/**
 * Drive a real worker thread running test/fixtures/worker-agent.ts.
 */
import { once } from 'node:events'
import type { Worker } from 'node:worker_threads'
import type { PixelportServer } from '../../server/server.js'
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
  let next = 1
  const pending = new Map<number, { resolve: (v: any) => void }>()
  worker.on('message', (msg) => {
    if (msg.ready === true) return
    pending.get(msg.id)?.resolve(msg)
    pending.delete(msg.id)
  })
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject)
    worker.on('message', function ready (msg) { if (msg.ready === true) { worker.off('message', ready); resolve() } })
  })
  const send = async (cmd: string, args: unknown[]): Promise<any> => {
    const id = next++
    const reply = new Promise<any>((resolve) => pending.set(id, { resolve }))
    worker.postMessage({ id, cmd, args })
    return await Promise.race([reply, exited.then((code) => ({ ok: false, error: { code: 'EXITED', message: `worker exited with ${code}` } }))])
  }
  return {
    worker,
    exited,
    async call (cmd, ...args) {
      const r = await send(cmd, args)
      if (!r.ok) throw Object.assign(new Error(r.error.message), { code: r.error.code })
      return r.result
    },
    async fail (cmd, ...args) {
      const r = await send(cmd, args)
      if (r.ok) throw new Error(`${cmd} succeeded but was expected to fail`)
      return r.error
    },
  }
}
