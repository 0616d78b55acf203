/**
 * createServer: the store, its shared services and every transport, wired together.
 */
import os from 'node:os'
import type { MessagePort, Worker, WorkerOptions } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import type { ShmInfo } from '../protocol/attach-messages.js'
import { LAYOUT_VERSION } from '../protocol/layout.js'
import { AttachService } from './attach/listener.js'
import type { ClusterNode } from './cluster/node.js'
import { defaultNodeId } from './cluster/options.js'
import { shmRoutes } from './attach/routes.js'
import { loadShmAddon } from '../shm/addon.js'
import { createBlockProvider, ShmBlockProvider } from './memory/shm-provider.js'
import type { ServerContext } from './context.js'
import { frameworkErrors, installErrorHandler } from './http/error-handler.js'
import { clientErrorHandler } from './http/client-errors.js'
import { collectApiDocs, serveApiDocs } from './http/docs.js'
import { installEdge } from './http/edge.js'
import { httpRoutes } from './http/routes.js'
import { ServerMetrics } from './metrics/metrics.js'
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options.js'
import { ImageStore } from './store/image-store.js'
import { SnapshotCache } from './store/snapshots.js'
import { loadImages, saveImages } from './store/persist.js'
import { recoveryReport, type RecoveryReport } from './store/restart-report.js'
import { uploadsOf, type UploadRegistry, type UploadReport } from './uploads/registry.js'
import { SessionHub } from './sessions/hub.js'
import { WorkerBridge, type WorkerErrorEvent } from './workers/bridge.js'
import { websocketEndpoint } from './ws/plugin.js'
import { sharedSchemaCompilers } from './http/schema-compilers.js'

export interface PixelportServer {
  readonly app: FastifyInstance
  readonly store: ImageStore
  readonly snapshots: SnapshotCache
  readonly options: ResolvedOptions
  /** Start listening; resolves to the base URL (e.g. `http://127.0.0.1:8080`). */
  listen (): Promise<string>
  /** The base URL once listening. */
  readonly url: string
  /**
   * Stop accepting, abort uploads still receiving their body (PXP_ERR_CLOSED, each logged and emitted as
   * `uploads` 'aborted'), end connections and release all memory. Idempotent.
   */
  close (options?: CloseOptions): Promise<void>
  /** Uploads in progress on every transport: the staging budget, the body clocks, 'aborted' events. */
  readonly uploads: UploadRegistry
  /**
   * A MessagePort for a worker thread: pass it in `workerData` with a `transferList` and call
   * `connect(port)` from `pixelport/worker` there.
   */
  workerChannel (): MessagePort
  /**
   * Start `file` in a worker thread already connected to the store (`await connect()` there). If it throws,
   * the error is logged with the module's name, `workerError` is emitted, what it held is recovered and the
   * server keeps serving.
   */
  spawnWorker (file: string | URL, options?: WorkerOptions): Worker
  /** `workerError`: a thread from spawnWorker threw; `{ module, error, worker }`. */
  on (event: 'workerError', listener: (event: WorkerErrorEvent) => void): PixelportServer
  off (event: 'workerError', listener: (event: WorkerErrorEvent) => void): PixelportServer
  /** The worker bridge (connections, for stats and tests). */
  readonly workers: WorkerBridge
  /** Prometheus metrics (`GET /metrics`); transports report through it as `ctx.metrics`. */
  readonly metrics: ServerMetrics
  /** Shared memory: on or off and why, and the names other processes attach with (also `GET /shm`). */
  readonly shm: ShmInfo
  /** Processes attached over the attach socket (null without shared memory). */
  readonly attach: AttachService | null
  /** Cluster membership (`cluster` option), joined at listen(); null for a single node. */
  readonly cluster: ClusterNode | null
  /** What this start took over from the previous store (`shm.recover`, `persist`), and the log lines saying so. */
  readonly recovery: RecoveryReport
}

export interface CloseOptions {
  /**
   * Leave the shared-memory segments (table, blocks) in place, marked released, for the next server started
   * with `shm: { recover: true }` (`--recover`) to adopt: a restart to upgrade loses nothing. Default false.
   */
  keep?: boolean
}

function countLoaded (r: { loaded: string[], skipped: string[] }): { loaded: number, skipped: string[] } {
  return { loaded: r.loaded.length, skipped: r.skipped }
}

/** How long close() lets requests in progress finish before it closes their connections. */
export const SHUTDOWN_GRACE_MS = 3000

export async function createServer (options: ServerOptions = {}): Promise<PixelportServer> {
  const resolved = resolveOptions(options)
  // --shm: blocks and the table in /dev/shm when the addon and the mount are there; otherwise in-process
  // memory, and `shm.reason` (printed by the CLI at start-up) says why.
  const choice = resolved.shm === null
    ? { provider: resolved.provider, warning: null }
    : createBlockProvider({ shm: true, mode: resolved.shm.mode, prefix: resolved.shm.prefix, recover: resolved.shm.recover })
  const shmProvider = choice.provider instanceof ShmBlockProvider ? choice.provider : null
  let store: ImageStore
  try {
    store = new ImageStore({
      blockSize: resolved.blockSize,
      capacity: resolved.capacity,
      maxImages: resolved.maxImages,
      maxDimension: resolved.maxDimension,
      maxImageBytes: resolved.maxImageBytes,
      lockTimeoutMs: resolved.lockTimeoutMs,
      evict: resolved.evict,
      provider: choice.provider,
      attachSocket: shmProvider?.socketPath,
    }, os.totalmem())
  } catch (err) {
    choice.provider?.close()
    throw err
  }
  let persisted: RecoveryReport['persisted'] = null
  if (resolved.persist !== null) {
    try {
      persisted = { dir: resolved.persist, ...countLoaded(loadImages(store, resolved.persist)) }
    } catch (err) {
      store.close()
      throw err
    }
  }
  const recovery = recoveryReport(resolved.shm?.recover === true, store.adoption, shmProvider?.recovery?.refused ?? [], shmProvider?.staleCleanup ?? null, persisted)
  // Worker threads and attached processes are sessions of one hub: one event relay, one missing-image resolver.
  const sessions = new SessionHub(store)
  const attach = shmProvider === null ? null : new AttachService(store, shmProvider, loadShmAddon().path as string, sessions)
  const shm: ShmInfo = {
    enabled: shmProvider !== null,
    reason: shmProvider !== null ? null : choice.warning ?? 'not enabled (start with --shm)',
    layoutVersion: LAYOUT_VERSION,
    table: store.table.segment,
    socket: attach?.address ?? null,
    storeId: shmProvider?.storeId ?? null,
    prefix: shmProvider?.prefix ?? null,
    mode: shmProvider?.mode ?? null,
    maxSlots: store.table.maxSlots,
    lockTimeoutMs: store.lockTimeoutMs,
    pid: process.pid,
  }
  const snapshots = new SnapshotCache(store, resolved.snapshotBytes)
  // Logged through fastify's logger when it is on, else on stderr: a worker's crash is never silent.
  const workers = new WorkerBridge(store, ({ module, error }) => {
    if (resolved.logger !== false && resolved.logger !== undefined) app.log.error({ err: error, module }, `worker ${module} failed`)
    else process.stderr.write(`pixelport: worker ${module} failed: ${error.stack ?? String(error)}\n`)
  }, sessions)
  const metrics = new ServerMetrics({ store, snapshots, connections: { worker: () => workers.connectionCount, attach: () => attach?.connectionCount ?? 0 } })
  // The cluster (and ioredis with it) is loaded only by servers that join one.
  const clustering = resolved.cluster === null ? null : await Promise.all([import('./cluster/node.js'), import('./cluster/replicas.js')])
  const cluster = clustering === null || resolved.cluster === null
    ? null
    : new clustering[0].ClusterNode(store, { ...resolved.cluster, nodeId: resolved.cluster.nodeId ?? defaultNodeId(resolved.port), auth: clustering[0].authDigest(options.tokens ?? [], resolved.cluster.token) })
  // Worker threads and attached processes here that open another node's image get a local read-only replica.
  const replicas = cluster === null || clustering === null ? null : clustering[1].attachReplicas({ store, workers }, cluster)
  const ctx: ServerContext = { store, snapshots, options: resolved, metrics, cluster }
  const uploads = uploadsOf(ctx)

  const app = Fastify({
    logger: resolved.logger as boolean,
    bodyLimit: resolved.maxJsonBytes,
    // Ids may contain '/', sent percent-encoded; keep them as one path parameter.
    routerOptions: { maxParamLength: 512 },
    frameworkErrors,
    // Requests Node's parser refuses, and a missing Host (checked by the request guard), get { code, message }.
    clientErrorHandler,
    http: { requireHostHeader: false },
    // Schemas compiled once per process (see schema-compilers.ts).
    schemaController: sharedSchemaCompilers,
  })
  installErrorHandler(app)
  const countAborted = metrics.observeUploads(() => uploads.stats())
  uploads.on('aborted', (u: UploadReport, err) => {
    countAborted(err.code)
    app.log.warn({ upload: u, code: err.code }, `upload aborted: ${err.message}`)
  })
  cluster?.useLogger(app.log)
  for (const note of recovery.notes) app.log[note.level](note.message)
  store.on('evicted', (d, why) => app.log.info({ id: d.id, bytes: d.view === null ? d.byteLength : 0, reason: why.code, for: why.for }, 'image evicted to make room'))
  try {
    // The OpenAPI collector first, so it sees every route (including /ready from installEdge); the docs
    // pages after the edge, so its guard, load shedding and authentication cover them.
    await collectApiDocs(app)
    await installEdge(app, resolved)
    await serveApiDocs(app)
    await app.register(httpRoutes, ctx)
    await app.register(websocketEndpoint, ctx)
    await app.register(shmRoutes, { info: () => shm })
    // Listening before any image exists: every descriptor names a socket that answers.
    await attach?.listen()
  } catch (err) {
    // Nothing may outlive a failed start: segments would stay in /dev/shm until this process exits.
    await attach?.close()
    replicas?.close()
    await cluster?.close()
    await workers.close()
    store.close()
    throw err
  }

  let url = ''
  let closing: Promise<void> | null = null
  const server: PixelportServer = {
    on (event, listener) { workers.on(event, listener); return server },
    off (event, listener) { workers.off(event, listener); return server },
    app,
    store,
    snapshots,
    options: resolved,
    get url () { return url },
    workers,
    metrics,
    workerChannel: () => workers.channel(),
    spawnWorker: (file, opts) => workers.spawn(file, opts),
    uploads,
    shm,
    attach,
    cluster,
    recovery,
    async listen () {
      const address = await app.listen({ host: resolved.host, port: resolved.port })
      url = address
      // Joined only once listening: the URL it advertises must answer.
      await cluster?.start(url)
      return url
    },
    async close (closeOptions = {}) {
      closing ??= (async () => {
        // Leave the cluster first, so the other nodes stop sending requests here.
        replicas?.close()
        await cluster?.close()
        // A stalled upload would hold its connection, and so app.close(), open for as long as its client
        // likes: abort them first (each answered PXP_ERR_CLOSED, its memory given back).
        uploads.abortAll()
        // Anything else that keeps a connection busy (a request body that never ends, a download to a
        // client that stopped reading) is cut after a grace period, so shutdown ends in bounded time.
        const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS)
        try {
          await app.close()
        } finally {
          clearTimeout(cut)
        }
        // Attached processes and workers first (their claims are recovered into the store), then the store,
        // whose provider unlinks every segment: a clean shutdown leaves nothing in /dev/shm.
        await attach?.close()
        await workers.close()
        // Written once nothing else can change an image: each file holds one consistent generation.
        if (resolved.persist !== null) await saveImages(store, resolved.persist)
        store.close(closeOptions.keep === true)
      })()
      return await closing
    },
  }
  return server
}
