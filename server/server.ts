/**
 * createServer: the store, its shared services and every transport, wired together.
 */
import os from 'node:os'
import type { MessagePort, Worker, WorkerOptions } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import type { ServerContext } from './context.js'
import { frameworkErrors, installErrorHandler } from './http/error-handler.js'
import { httpRoutes } from './http/routes.js'
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options.js'
import { ImageStore } from './store/image-store.js'
import { SnapshotCache } from './store/snapshots.js'
import { WorkerBridge } from './workers/bridge.js'

export interface PixelportServer {
  readonly app: FastifyInstance
  readonly store: ImageStore
  readonly snapshots: SnapshotCache
  readonly options: ResolvedOptions
  /** Start listening; resolves to the base URL (e.g. `http://127.0.0.1:8080`). */
  listen (): Promise<string>
  /** The base URL once listening. */
  readonly url: string
  /** Stop accepting, end connections and release all memory. Idempotent. */
  close (): Promise<void>
  /**
   * A MessagePort for a worker thread: pass it in `workerData` with a `transferList` and call
   * `connect(port)` from `pixelport/worker` there.
   */
  workerChannel (): MessagePort
  /** Start `file` in a worker thread already connected to the store (`await connect()` there). */
  spawnWorker (file: string | URL, options?: WorkerOptions): Worker
  /** The worker bridge (connections, for stats and tests). */
  readonly workers: WorkerBridge
}

export async function createServer (options: ServerOptions = {}): Promise<PixelportServer> {
  const resolved = resolveOptions(options)
  const store = new ImageStore({
    blockSize: resolved.blockSize,
    capacity: resolved.capacity,
    maxImages: resolved.maxImages,
    maxDimension: resolved.maxDimension,
    maxImageBytes: resolved.maxImageBytes,
    lockTimeoutMs: resolved.lockTimeoutMs,
    provider: resolved.provider,
  }, os.totalmem())
  const snapshots = new SnapshotCache(store, resolved.snapshotBytes)
  const ctx: ServerContext = { store, snapshots, options: resolved }
  const workers = new WorkerBridge(store)

  const app = Fastify({
    logger: resolved.logger as boolean,
    bodyLimit: resolved.maxJsonBytes,
    // Ids may contain '/', sent percent-encoded; keep them as one path parameter.
    routerOptions: { maxParamLength: 512 },
    frameworkErrors,
  })
  installErrorHandler(app)
  await app.register(httpRoutes, ctx)

  let url = ''
  let closing: Promise<void> | null = null
  return {
    app,
    store,
    snapshots,
    options: resolved,
    get url () { return url },
    workers,
    workerChannel: () => workers.channel(),
    spawnWorker: (file, opts) => workers.spawn(file, opts),
    async listen () {
      const address = await app.listen({ host: resolved.host, port: resolved.port })
      url = address
      return url
    },
    async close () {
      closing ??= (async () => {
        await app.close()
        await workers.close()
        store.close()
      })()
      return await closing
    },
  }
}
