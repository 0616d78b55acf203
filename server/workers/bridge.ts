/**
 * The worker bridge: hands out worker channels and keeps one WorkerConnection per connected worker thread.
 * It sits on top of the store like the HTTP and WebSocket transports do.
 */
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import { MessageChannel, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads'
import { pxpError } from '../../protocol/errors.js'
import { LOCK_TOKEN } from '../../protocol/layout.js'
import type { ImageStore } from '../store/image-store.js'
import { type MissingImageResolver, SessionHub } from '../sessions/hub.js'
import { WorkerConnection } from './connection.js'

export type { MissingImageResolver }

/** Key in `workerData` under which spawnWorker passes the channel; `connect()` looks there by default. */
export const WORKER_DATA_KEY = 'pixelport'

/** A spawned worker threw (or failed to start): `module` is its file, as given to spawnWorker. */
export interface WorkerErrorEvent {
  module: string
  error: Error
  worker: Worker
}

/**
 * Events: `workerError` (WorkerErrorEvent) when a thread started by spawn() throws. The thread has ended
 * then and whatever it held is recovered when its port closes; the server keeps serving.
 */
export class WorkerBridge extends EventEmitter<{ workerError: [WorkerErrorEvent] }> {
  private readonly connections = new Set<WorkerConnection>()
  private readonly workers = new Set<Worker>()
  private nextToken = 1
  private closed = false

  /**
   * `log`: how an error in a spawned worker is reported (always, whether or not anyone listens to
   * `workerError`). `hub`: what worker sessions share with the server's other sessions (attached
   * processes): the store's event relay and the missing-image resolver.
   */
  constructor (
    store: ImageStore,
    private readonly log: (event: WorkerErrorEvent) => void = () => {},
    private readonly hub: SessionHub = new SessionHub(store),
  ) {
    super()
  }

  get connectionCount (): number { return this.connections.size }

  /**
   * Asked when a worker — or, through the same SessionHub, an attached process — opens or describes an
   * image this store does not hold, before answering PXP_ERR_NOT_FOUND. The cluster sets it to pull a
   * replica (server/cluster/replicas.ts); null (default): not-found is final. See SessionHub.resolveMissing.
   */
  get resolveMissing (): MissingImageResolver | null { return this.hub.resolveMissing }
  set resolveMissing (resolver: MissingImageResolver | null) { this.hub.resolveMissing = resolver }

  /** Connected workers and the requests they have sent (for stats and tests). */
  stats (): { connections: number, requests: number } {
    let requests = 0
    for (const c of this.connections) requests += c.requests
    return { connections: this.connections.size, requests }
  }

  /** A MessagePort for a worker: pass it in `workerData` with a `transferList`, then `connect(port)` there. */
  channel (): MessagePort {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'worker bridge')
    const token = this.allocateToken()
    const { port1, port2 } = new MessageChannel()
    const conn = new WorkerConnection(this.hub, port1, token, (c) => this.connections.delete(c))
    this.connections.add(conn)
    return port2
  }

  /** Start `file` in a worker thread already connected: `await connect()` there finds the channel. */
  spawn (file: string | URL, options: WorkerOptions = {}): Worker {
    const port = this.channel()
    const workerData = { ...(options.workerData ?? {}), [WORKER_DATA_KEY]: port }
    const worker = new Worker(file, {
      ...options,
      workerData,
      transferList: [...(options.transferList ?? []), port],
    })
    this.workers.add(worker)
    worker.once('exit', () => this.workers.delete(worker))
    // A Worker's 'error' with no listener is thrown in the server's process: one user's bug, every client gone.
    const module = file instanceof URL ? (file.protocol === 'file:' ? fileURLToPath(file) : file.href) : file
    worker.on('error', (error) => {
      const event: WorkerErrorEvent = { module, error, worker }
      this.log(event)
      this.emit('workerError', event)
    })
    return worker
  }

  /** Disconnect every worker (their claims are recovered) and stop spawned workers. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.workers].map(async (w) => await w.terminate()))
    for (const conn of [...this.connections]) conn.close()
  }

  private allocateToken (): number {
    const token = this.nextToken++
    // Tokens from LOCK_TOKEN.EXTERNAL up belong to attached processes.
    if (token >= LOCK_TOKEN.EXTERNAL) throw pxpError('PXP_ERR_LOCK_TOKENS_EXHAUSTED', 'every token for worker connections is in use')
    return token
  }
}
