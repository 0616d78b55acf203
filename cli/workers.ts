/**
 * `--worker FILE`: user modules in worker threads, restarted with exponential backoff when they crash.
 *
 * The server reports the error itself (spawnWorker logs it with the module's name and emits `workerError`)
 * and recovers what the thread held; here we only decide whether to start it again. Restarts are bounded,
 * so a module that throws at start-up is not restarted forever; `--worker-restarts 0` turns them off.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { PixelportServer } from '../server/server.js'

/** Delay before the first restart; doubled for each one after it, up to MAX_BACKOFF_MS. */
export const FIRST_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 30_000

export interface WorkerModules {
  /** Stop restarting (the server is shutting down). */
  stop (): void
}

/** Start `threads` threads of each module in `files`, restarting each crashed thread up to `maxRestarts` times. */
export function runWorkerModules (server: PixelportServer, files: readonly string[], threads: number, maxRestarts: number, firstBackoffMs = FIRST_BACKOFF_MS): WorkerModules {
  let stopped = false
  const timers = new Set<NodeJS.Timeout>()
  const start = (file: string, index: number, restarts: number): void => {
    const worker = server.spawnWorker(pathToFileURL(path.resolve(file)), { workerData: { index, threads } })
    worker.once('exit', (code) => {
      if (stopped || code === 0) return
      if (restarts >= maxRestarts) {
        if (maxRestarts > 0) process.stderr.write(`pixelport: worker ${file}#${index} exited with code ${code}; not restarted again (${maxRestarts} restarts)\n`)
        return
      }
      const delay = Math.min(MAX_BACKOFF_MS, firstBackoffMs * 2 ** restarts)
      process.stderr.write(`pixelport: worker ${file}#${index} exited with code ${code}; restarting in ${delay} ms (${restarts + 1} of ${maxRestarts})\n`)
      const timer = setTimeout(() => {
        timers.delete(timer)
        if (!stopped) start(file, index, restarts + 1)
      }, delay)
      timers.add(timer)
    })
  }
  for (const file of files) for (let i = 0; i < threads; i++) start(file, i, 0)
  return {
    stop () {
      stopped = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
    },
  }
}
