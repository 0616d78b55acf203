/**
 * One connection of a RemoteClient: the socket, the requests waiting for their replies, the streams being
 * assembled and the subscriptions this connection carries. A client that reconnects opens a new Session
 * and moves its subscriptions to it.
 */
import { errorFromBody, pxpError, type PixelportError } from '../../protocol/errors.js'
import {
  CHUNK_HEAD_BYTES, PROTOCOL_VERSION, readChunkHead, type ClientMessage, type ErrorMessage, type EventMessage, type FrameMessage, type RequestId,
  type ServerLimits, type ServerMessage,
} from '../../protocol/messages.js'
import { decode, encode } from './codec.js'
import { FrameAssembler, type RemoteFrame } from './frames.js'
import { WireSocket, type SocketOptions } from './socket.js'
import type { RemoteSubscription } from './subscription.js'

interface Pending {
  resolve (message: ServerMessage): void
  reject (err: PixelportError): void
}

/**
 * WebSocket frame size to ask for when `ws` hands over frames uncopied. Most such frames then lie within
 * one 64 KiB socket read and arrive as views of it; larger ones would straddle reads and be copied.
 */
const FRAGMENT_SIZE = 16 * 1024

export interface HelloOptions extends SocketOptions {
  clientName?: string
  token?: string
}

/** The reply message for op `Op`; a get resolves with its assembled frame. */
export type Reply<Op extends ServerMessage['op']> = Op extends 'end' ? { frame: RemoteFrame } : Extract<ServerMessage, { op: Op }>

export class Session {
  private readonly pending = new Map<RequestId, Pending>()
  /** Gets that asked for their bytes in a given buffer. */
  readonly targets = new Map<RequestId, Uint8Array>()
  /** Streams in progress, by stream number: the get or subscription they belong to. */
  private readonly streams = new Map<number, { frame: FrameAssembler, req?: RequestId, sub?: number }>()
  private readonly subscriptions = new Map<number, RemoteSubscription>()
  /** Subscriptions with data: the event waiting for its frame. */
  private readonly awaitingFrame = new Map<number, EventMessage>()
  /** Subscribe requests waiting for their `subscribed` reply: register the subscription on dispatch. */
  private readonly subscribing = new Map<RequestId, (sub: number) => void>()
  /** Subscriptions whose created/updated events are followed by a frame. */
  private readonly dataSubs = new Set<number>()
  private nextReq = 1
  private socket!: WireSocket
  closedWith: PixelportError | null = null
  private lastError: PixelportError | null = null
  /** What the server announced in `welcome`. */
  limits!: ServerLimits
  protocol = PROTOCOL_VERSION

  private constructor (private readonly onClosed: (err: PixelportError, subscriptions: RemoteSubscription[]) => void) {}

  /** Connect and say hello. `onClosed` hears of the end, with the subscriptions the connection carried. */
  static async open (url: string, options: HelloOptions, onClosed: (err: PixelportError, subscriptions: RemoteSubscription[]) => void): Promise<Session> {
    const session = new Session(onClosed)
    session.socket = await WireSocket.open(url, {
      message: (data) => session.onMessage(data),
      close: (code, reason) => session.onClose(code, reason),
    }, options)
    try {
      const hello: ClientMessage = { op: 'hello', req: session.newReq(), protocol: PROTOCOL_VERSION, client: options.clientName ?? 'pixelport-remote' }
      if (session.socket.fragments) hello.fragmentSize = FRAGMENT_SIZE
      if (options.token !== undefined) hello.token = options.token
      const welcome = await session.request(hello, 'welcome')
      session.limits = welcome.limits
      session.protocol = welcome.protocol
    } catch (err) {
      session.socket.close()
      throw err
    }
    return session
  }

  get open (): boolean {
    return this.closedWith === null && this.socket.open
  }

  /** Requests waiting for their reply. */
  get busy (): number {
    return this.pending.size
  }

  close (code = 1000): void {
    if (this.closedWith === null) this.socket.close(code)
  }

  /** Resolve once at most `limit` bytes wait to be sent. */
  async below (limit: number): Promise<void> {
    await this.socket.below(limit)
  }

  sendRaw (bytes: Uint8Array): void {
    this.socket.send(bytes)
  }

  newReq (): number {
    const req = this.nextReq
    this.nextReq = req >= Number.MAX_SAFE_INTEGER ? 1 : req + 1
    return req
  }

  send (message: ClientMessage): void {
    this.socket.send(encode(message))
  }

  /** Subscribe `subscription` on this connection: it gets the server's number before any of its events is dispatched. */
  async subscribe (message: ClientMessage & { op: 'subscribe' }, subscription: RemoteSubscription, data: boolean): Promise<void> {
    this.subscribing.set(message.req, (sub) => {
      subscription.sub = sub
      this.subscriptions.set(sub, subscription)
      if (data) this.dataSubs.add(sub)
    })
    try {
      await this.request(message, 'subscribed')
    } finally {
      this.subscribing.delete(message.req)
    }
  }

  /** Forget a subscription (its unsubscribe is sent by the caller). */
  drop (sub: number): void {
    this.subscriptions.delete(sub)
    this.awaitingFrame.delete(sub)
    this.dataSubs.delete(sub)
  }

  /** Send `message` and resolve with the reply of type `op` (rejecting on an `error` for its req). */
  async request<Op extends ServerMessage['op']> (message: ClientMessage, op: Op, signal?: AbortSignal): Promise<Reply<Op>> {
    if (this.closedWith !== null) throw this.closedWith
    if (signal?.aborted === true) throw pxpError('PXP_ERR_ABORTED', `${message.op} was aborted before it was sent`)
    const { req } = message
    return await new Promise<Reply<Op>>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.has(req)) return
        // The server answers a cancel with PXP_ERR_ABORTED for this req; reject now, ignore that later.
        this.pending.delete(req)
        for (const [stream, s] of this.streams) if (s.req === req) this.streams.delete(stream)
        if (this.open) this.send({ op: 'cancel', req })
        reject(pxpError('PXP_ERR_ABORTED', `${message.op} was aborted`))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(req, {
        resolve: (reply) => {
          signal?.removeEventListener('abort', onAbort)
          if (reply.op !== op) {
            reject(pxpError('PXP_ERR_PROTOCOL', `expected ${op} in reply to ${message.op}, got ${reply.op}`))
            return
          }
          resolve(reply as Reply<Op>)
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        },
      })
      try {
        this.send(message)
      } catch (err) {
        this.pending.delete(req)
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
    })
  }

  /** End the connection now: every request waiting fails with `err` at once, without waiting for the socket's close. */
  terminate (err: PixelportError): void {
    this.socket.close(1000)
    this.finish(err)
  }

  // ---- incoming -----------------------------------------------------------------------------------

  private protocolError (err: unknown): void {
    this.lastError = err as PixelportError
    this.socket.close(1002, 'PXP_ERR_PROTOCOL')
  }

  private onMessage (received: Uint8Array | readonly Uint8Array[]): void {
    let data: Uint8Array
    if (Array.isArray(received)) {
      if (received.length === 1) {
        data = received[0]
      } else {
        // A fragmented chunk: copy its payload pieces straight into the frame, never joining them first.
        const head = readChunkHead(received[0])
        if (head !== null) {
          this.onChunkParts(head, received)
          return
        }
        data = concat(received)
      }
    } else {
      data = received as Uint8Array
    }
    try {
      this.dispatch(decode(data))
    } catch (err) {
      this.protocolError(err)
    }
  }

  private dispatch (message: ServerMessage): void {
    switch (message.op) {
      case 'chunk':
        this.streams.get(message.stream)?.frame.add(message)
        return
      case 'frame':
        this.onFrame(message)
        return
      case 'end': {
        const stream = this.streams.get(message.stream)
        if (stream === undefined) return
        this.streams.delete(message.stream)
        const frame = stream.frame.finish()
        if (stream.req !== undefined) this.settle(stream.req, { op: 'end', req: stream.req, frame } as unknown as ServerMessage)
        else if (stream.sub !== undefined) {
          const event = this.awaitingFrame.get(stream.sub)
          this.awaitingFrame.delete(stream.sub)
          if (event !== undefined) this.subscriptions.get(stream.sub)?.push(event, frame)
        }
        return
      }
      case 'event': {
        const subscription = this.subscriptions.get(message.sub)
        if (subscription === undefined) return
        // With data, created/updated events are followed by their frame: deliver them together.
        if (message.type !== 'deleted' && this.dataSubs.has(message.sub)) this.awaitingFrame.set(message.sub, message)
        else subscription.push(message)
        return
      }
      case 'error':
        this.onError(message)
        return
      case 'subscribed':
        this.subscribing.get(message.req)?.(message.sub)
        this.settle(message.req, message)
        return
      default:
        this.settle(message.req, message)
    }
  }

  private onChunkParts (head: { stream: number, offset: number, length: number }, fragments: readonly Uint8Array[]): void {
    const stream = this.streams.get(head.stream)
    if (stream === undefined) return
    const parts = [fragments[0].subarray(CHUNK_HEAD_BYTES), ...fragments.slice(1)]
    try {
      stream.frame.addParts(head.offset, parts, head.length)
    } catch (err) {
      this.protocolError(err)
    }
  }

  private onFrame (message: FrameMessage): void {
    if (message.req !== undefined) {
      const pending = this.pending.get(message.req)
      if (pending === undefined) return
      let frame: FrameAssembler
      try {
        frame = new FrameAssembler(message, this.targets.get(message.req))
      } catch (err) {
        // The buffer given is too small: fail the get and stop its stream.
        this.pending.delete(message.req)
        pending.reject(err as PixelportError)
        this.send({ op: 'cancel', req: message.req })
        return
      }
      this.streams.set(message.stream, { frame, req: message.req })
    } else if (message.sub !== undefined) {
      if (!this.subscriptions.has(message.sub)) return
      this.streams.set(message.stream, { frame: new FrameAssembler(message), sub: message.sub })
    }
  }

  private onError (message: ErrorMessage): void {
    const err = errorFromBody(message)
    if (message.stream !== undefined) this.streams.delete(message.stream)
    if (message.req !== null && message.req !== undefined) {
      const pending = this.pending.get(message.req)
      if (pending !== undefined) {
        this.pending.delete(message.req)
        pending.reject(err)
      }
      return
    }
    if (message.sub !== undefined) {
      this.awaitingFrame.delete(message.sub)
      // A frame the server could not serve (snapshot budget, policy 'latest'): that event is skipped.
      // Anything else for a subscription ends the connection right after, and reaches it through onClose.
      return
    }
    this.lastError = err
  }

  private settle (req: RequestId, message: ServerMessage): void {
    const pending = this.pending.get(req)
    if (pending === undefined) return
    this.pending.delete(req)
    pending.resolve(message)
  }

  private onClose (code: number, reason: string): void {
    const known = /^PXP_ERR_[A-Z_]+$/.test(reason)
    const err = this.lastError ?? (known
      ? errorFromBody({ code: reason, message: `The server closed the connection (${code} ${reason})` })
      : pxpError('PXP_ERR_CLOSED', `connection (code ${code}${reason !== '' ? ' ' + reason : ''})`))
    this.finish(err)
  }

  private finish (err: PixelportError): void {
    if (this.closedWith !== null) return
    this.closedWith = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.streams.clear()
    const subscriptions = [...this.subscriptions.values()]
    this.subscriptions.clear()
    this.onClosed(err, subscriptions)
  }
}

function concat (parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.byteLength
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
