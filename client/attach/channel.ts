/**
 * Request/reply over the attach socket (protocol/attach-messages.ts), one JSON object per line.
 *
 * The socket is the process's registration with the server: while it is open the server keeps what this
 * process holds; when it closes (however the process ends) the server takes it all back. Like the worker's
 * port, it keeps the process alive only while something waits on it, so a script that is done can exit.
 */
import net from 'node:net'
import {
  type AttachNotice, type AttachRequest, encodeLine, LineDecoder, type ServerToAttach,
} from '../../protocol/attach-messages.js'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { errorFromBody, pxpError } from '../../protocol/errors.js'

type Pending = { resolve: (v: unknown) => void, reject: (e: Error) => void }
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
export type { ChangeType }

export class AttachChannel {
  private nextReq = 1
  private readonly pending = new Map<number, Pending>()
  private holds = 0
  private closed = false
  /** Called for every 'event' message (after a 'watch'). */
  onEvent: (type: ChangeType, descriptor: ImageDescriptor) => void = () => {}
  /** Called once when the connection ends, for whatever reason. */
  onClose: () => void = () => {}

  private constructor (private readonly socket: net.Socket) {
    const decoder = new LineDecoder((msg) => this.onMessage(msg as ServerToAttach))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      try {
        decoder.push(chunk)
      } catch (err) {
        socket.destroy()
        this.fail(pxpError('PXP_ERR_PROTOCOL', `unreadable message from the server: ${(err as Error).message}`))
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => this.fail(pxpError('PXP_ERR_CLOSED', 'connection to the server')))
    socket.unref()
  }

  /** Connect to the attach socket at `address` (a Unix socket path). Throws PXP_ERR_SHM when nobody listens. */
  static async connect (address: string): Promise<AttachChannel> {
    const socket = net.connect(address)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', (err) => reject(pxpError('PXP_ERR_SHM', `cannot reach the attach socket ${JSON.stringify(address)}: ${err.message}`)))
    })
    return new AttachChannel(socket)
  }

  get isClosed (): boolean { return this.closed }

  request<T> (msg: DistributiveOmit<AttachRequest, 'req'>): Promise<T> {
    if (this.closed) return Promise.reject(pxpError('PXP_ERR_CLOSED', 'connection to the server'))
    const req = this.nextReq++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject })
      this.hold()
      this.socket.write(encodeLine({ ...msg, req }))
    })
  }

  notify (msg: AttachNotice): void {
    if (!this.closed) this.socket.write(encodeLine(msg))
  }

  /** Keep the process alive (something waits on the server or on shared memory). Pair with letGo(). */
  hold (): void {
    if (this.holds++ === 0) this.socket.ref()
  }

  letGo (): void {
    if (--this.holds === 0) this.socket.unref()
  }

  /** Detach: the server gives back whatever this process still holds. */
  close (): void {
    if (this.closed) return
    this.socket.end()
    this.fail(pxpError('PXP_ERR_CLOSED', 'connection to the server'))
  }

  private onMessage (msg: ServerToAttach): void {
    if (msg.op === 'event') {
      this.onEvent(msg.type, msg.descriptor)
      return
    }
    const p = this.pending.get(msg.req)
    if (p === undefined) {
      // req 0: the server is dropping us for a protocol error; the close that follows fails the rest.
      return
    }
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
    if (this.holds > 0) {
      this.holds = 0
      this.socket.unref()
    }
    this.onClose()
  }
}
