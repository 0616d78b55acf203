/**
 * Request/reply over the worker's MessagePort. The port keeps the thread alive only while something is
 * waiting on it (a request in flight, a change listener, a waiter), so a worker that is done can exit.
 */
import type { MessagePort } from 'node:worker_threads'
import { errorFromBody, pxpError } from '../../protocol/errors.js'
import type { ServerToWorker, WorkerNotice, WorkerRequest } from '../../protocol/worker-messages.js'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'

type Pending = { resolve: (v: unknown) => void, reject: (e: Error) => void }
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export class Rpc {
  private nextReq = 1
  private readonly pending = new Map<number, Pending>()
  private holds = 0
  private closed = false

  constructor (
    private readonly port: MessagePort,
    private readonly onEvent: (type: ChangeType, descriptor: ImageDescriptor) => void,
  ) {
    port.on('message', (msg: ServerToWorker) => this.onMessage(msg))
    port.on('close', () => this.fail(pxpError('PXP_ERR_CLOSED', 'connection to the server')))
    port.unref()
  }

  get isClosed (): boolean { return this.closed }

  request<T> (msg: DistributiveOmit<WorkerRequest, 'req'>): Promise<T> {
    if (this.closed) return Promise.reject(pxpError('PXP_ERR_CLOSED', 'connection to the server'))
    const req = this.nextReq++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject })
      this.hold()
      this.port.postMessage({ ...msg, req })
    })
  }

  notify (msg: WorkerNotice): void {
    if (!this.closed) this.port.postMessage(msg)
  }

  /** Keep the thread alive (something waits on the server). Pair with letGo(). */
  hold (): void {
    if (this.holds++ === 0) this.port.ref()
  }

  letGo (): void {
    if (--this.holds === 0) this.port.unref()
  }

  close (): void {
    if (this.closed) return
    this.fail(pxpError('PXP_ERR_CLOSED', 'connection to the server'))
    this.port.close()
  }

  private onMessage (msg: ServerToWorker): void {
    if (msg.op === 'event') {
      this.onEvent(msg.type, msg.descriptor)
      return
    }
    const p = this.pending.get(msg.req)
    if (p === undefined) return
    this.pending.delete(msg.req)
    this.letGo()
    if ('error' in msg) p.reject(errorFromBody(msg.error))
    else p.resolve(msg.result)
  }

  private fail (err: Error): void {
    if (this.closed) return
    this.closed = true
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}
