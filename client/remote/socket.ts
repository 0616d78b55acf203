/**
 * One WebSocket, whichever implementation the platform has: the platform's `WebSocket` when there is
 * one (browsers, Deno, Node 22+), else the `ws` package, loaded only then and only by dynamic import so
 * that browser bundles never need it.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'

/** The subset of the WHATWG WebSocket both implementations provide. */
interface WebSocketLike {
  binaryType: string
  readonly bufferedAmount: number
  readonly readyState: number
  send (data: Uint8Array): void
  close (code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number, reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown

export interface SocketOptions {
  /** A WebSocket class to use instead of the platform's (or `ws` in Node). */
  WebSocket?: WebSocketConstructor
  /** Node.js only (`ws`): extra HTTP headers for the upgrade request, e.g. authorization. */
  headers?: Record<string, string>
  /** Give up connecting after this many ms. Default 10000. */
  timeout?: number
  signal?: AbortSignal
}

export interface SocketHandlers {
  /** One message: its bytes, or (when `fragments` is true) the payloads of its WebSocket frames. */
  message (data: Uint8Array | readonly Uint8Array[]): void
  close (code: number, reason: string): void
}

const OPEN = 1

/** An open WebSocket carrying binary messages. */
export class WireSocket {
  private drainWaiters: Array<() => void> = []
  private pollTimer: ReturnType<typeof setTimeout> | null = null

  private constructor (private readonly ws: WebSocketLike, private readonly hasWriteCallbacks: boolean) {}

  /** True when messages arrive as their frames' payloads, uncopied (Node's `ws`): worth asking the server to fragment chunks. */
  get fragments (): boolean {
    return this.hasWriteCallbacks
  }

  /**
   * Connect to `url` and resolve once open. Rejects with PXP_ERR_CLOSED if the server refuses,
   * PXP_ERR_TIMEOUT after `timeout`, PXP_ERR_ABORTED when `signal` aborts.
   */
  static async open (url: string, handlers: SocketHandlers, options: SocketOptions = {}): Promise<WireSocket> {
    const { ws, node } = await create(url, options)
    const socket = new WireSocket(ws, node)
    // `ws` can hand a message over as the payloads of its frames, views of what the socket read: the
    // client then copies pixels once, where assembling the message first would copy them twice.
    ws.binaryType = node ? 'fragments' : 'arraybuffer'
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeout ?? 10000
      const timer = setTimeout(() => fail(pxpError('PXP_ERR_TIMEOUT', timeoutMs, `connecting to ${url}`)), timeoutMs)
      const onAbort = (): void => fail(pxpError('PXP_ERR_ABORTED', `connecting to ${url}`))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
      }
      function fail (err: PixelportError): void {
        settle()
        ws.onopen = ws.onclose = null
        // Closing while connecting makes `ws` emit an error; keep a listener so it is not thrown.
        ws.onerror = () => {}
        try { ws.close() } catch {}
        reject(err)
      }
      if (options.signal?.aborted === true) return onAbort()
      ws.onopen = () => {
        settle()
        resolve()
      }
      ws.onerror = () => {}
      ws.onclose = (ev) => fail(pxpError('PXP_ERR_CLOSED', `connection to ${url} (code ${ev.code}${ev.reason !== '' ? ' ' + ev.reason : ''})`))
    })
    ws.onmessage = (ev) => {
      const data = ev.data
      if (data instanceof Uint8Array) handlers.message(data)
      else if (Array.isArray(data)) handlers.message(data as Uint8Array[])
      else if (data instanceof ArrayBuffer) handlers.message(new Uint8Array(data))
      else if (typeof data === 'string') handlers.message(new Uint8Array(0))
    }
    ws.onerror = () => {}
    ws.onclose = (ev) => {
      socket.wakeDrainWaiters()
      handlers.close(ev.code, ev.reason)
    }
    return socket
  }

  get open (): boolean {
    return this.ws.readyState === OPEN
  }

  get bufferedAmount (): number {
    return this.ws.bufferedAmount
  }

  send (data: Uint8Array): void {
    if (!this.open) throw pxpError('PXP_ERR_CLOSED', 'connection')
    if (this.hasWriteCallbacks) {
      (this.ws as unknown as { send (d: Uint8Array, cb: () => void): void }).send(data, () => this.wakeDrainWaiters())
    } else {
      this.ws.send(data)
    }
  }

  /** Resolve once at most `limit` bytes wait to be sent (or the socket closed). */
  async below (limit: number): Promise<void> {
    while (this.open && this.ws.bufferedAmount > limit) {
      await new Promise<void>((resolve) => {
        this.drainWaiters.push(resolve)
        // The platform WebSocket has no drain event: look again shortly.
        if (!this.hasWriteCallbacks) this.pollTimer ??= setTimeout(() => this.wakeDrainWaiters(), 4)
      })
    }
  }

  close (code = 1000, reason = ''): void {
    try {
      this.ws.close(code, reason)
    } catch {
      // Already closed or closing.
    }
  }

  private wakeDrainWaiters (): void {
    if (this.pollTimer !== null) {
      clearTimeout(this.pollTimer)
      this.pollTimer = null
    }
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }
}

async function create (url: string, options: SocketOptions): Promise<{ ws: WebSocketLike, node: boolean }> {
  if (options.WebSocket !== undefined) {
    return { ws: new options.WebSocket(url) as WebSocketLike, node: false }
  }
  const platform = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (platform !== undefined && options.headers === undefined) {
    return { ws: new platform(url) as WebSocketLike, node: false }
  }
  // Node.js 20 has no WebSocket of its own (and a platform WebSocket cannot send headers).
  const { WebSocket } = await import('ws')
  // No size limit of our own: the server bounds its messages (chunkSize; a `list` of many images can be large).
  const ws = new WebSocket(url, { headers: options.headers, perMessageDeflate: false, maxPayload: 0 })
  return { ws: ws as unknown as WebSocketLike, node: true }
}
