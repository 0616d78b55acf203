/**
 * A bare protocol client for tests: a real `ws` socket, standard MessagePack, and every message the server
 * sends checked against SERVER_MESSAGE_SCHEMAS. Tests speak raw messages through it, so they exercise the
 * protocol as documented, not through RemoteClient.
 */
import { Ajv, type ValidateFunction } from 'ajv'
import { Packr, Unpackr } from 'msgpackr'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import { WIRE_OPTIONS, type ClientMessage, type FrameMessage, type RequestId, type ServerMessage } from '../../protocol/messages.js'
import { SERVER_MESSAGE_SCHEMAS } from '../../protocol/wire/server-messages.js'
import type { PixelportServer } from '../../server/server.js'

const packr = new Packr({ ...WIRE_OPTIONS })
const unpackr = new Unpackr({ ...WIRE_OPTIONS })

const ajv = new Ajv({ strict: true, allErrors: true })
ajv.addKeyword({ keyword: 'binary', schemaType: 'boolean', validate: (w: boolean, d: unknown) => !w || d instanceof Uint8Array, errors: false })
const validators = new Map<string, ValidateFunction>(Object.entries(SERVER_MESSAGE_SCHEMAS).map(([op, s]) => [op, ajv.compile(s)]))

/** A decoded server message; loosely typed so tests can read any field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = { op: ServerMessage['op'], [field: string]: any }

export interface Closed {
  code: number
  reason: string
}

export function wsUrl (httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws') + '/ws'
}

export function pack (value: unknown): Buffer {
  return packr.pack(value)
}

export class WireClient {
  readonly messages: Msg[] = []
  /** Messages that did not match their schema (tests assert this stays empty). */
  readonly invalid: Array<{ message: unknown, errors: unknown }> = []
  readonly closed: Promise<Closed>
  private waiters: Array<() => void> = []
  private nextReq = 1

  private constructor (readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = unpackr.unpack(data) as Msg
      const validate = validators.get(message.op)
      if (validate === undefined || !validate(message)) this.invalid.push({ message, errors: validate?.errors ?? 'unknown op' })
      this.messages.push(message)
      this.wake()
    })
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => {
      this.wake()
      resolve({ code, reason: reason.toString() })
    }))
  }

  static async connect (t: Test, url: string): Promise<WireClient> {
    const ws = new WebSocket(wsUrl(url), { perMessageDeflate: false })
    const client = new WireClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    ws.on('error', () => {})
    t.teardown(() => { if (ws.readyState !== ws.CLOSED) ws.terminate() })
    return client
  }

  req (): number {
    return this.nextReq++
  }

  send (message: ClientMessage | Record<string, unknown>): void {
    this.ws.send(pack(message))
  }

  sendRaw (bytes: Uint8Array | string): void {
    this.ws.send(bytes)
  }

  /** Wait for the first message (not yet taken) matching `match`, and take it. */
  async next (match: (m: Msg) => boolean = () => true): Promise<Msg> {
    for (;;) {
      const i = this.messages.findIndex(match)
      if (i >= 0) return this.messages.splice(i, 1)[0]
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting; have ${JSON.stringify(this.messages.map((m) => m.op))}`)
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  /** Send a request and wait for its reply (the first message with its req). */
  async request (message: Record<string, unknown>): Promise<Msg> {
    const req = this.req()
    this.send({ ...message, req })
    return await this.next((m) => (m as { req?: RequestId }).req === req)
  }

  /** Send a get and collect its whole stream: the frame header, the bytes, and every message of it in order. */
  async get (id: string, extra: Record<string, unknown> = {}): Promise<{ frame: FrameMessage, bytes: Buffer, chunks: number }> {
    const req = this.req()
    this.send({ op: 'get', req, id, ...extra })
    const first = await this.next((m) => m.req === req)
    if (first.op === 'error') throw Object.assign(new Error(first.message), { code: first.code })
    if (first.op !== 'frame') throw new Error(`expected frame, got ${first.op}`)
    return { frame: first as FrameMessage, ...await this.collect(first as FrameMessage) }
  }

  /** Collect the chunks and end of the stream a frame header announced. */
  async collect (frame: FrameMessage): Promise<{ bytes: Buffer, chunks: number }> {
    const bytes = Buffer.alloc(frame.byteLength)
    let chunks = 0
    for (;;) {
      const m = await this.next((x) => (x.op === 'chunk' || x.op === 'end' || x.op === 'error') && (x as { stream?: number }).stream === frame.stream)
      if (m.op === 'end') return { bytes, chunks }
      if (m.op === 'error') throw Object.assign(new Error(m.message), { code: m.code })
      if (m.op === 'chunk') {
        bytes.set(m.data, m.offset)
        chunks++
      }
    }
  }

  /** Stop reading from the socket: the server's sends pile up in the kernel, then in its own buffer. */
  pause (): void {
    this.ws.pause()
  }

  resume (): void {
    this.ws.resume()
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

/** The server-side sockets of a running server (to look at their bufferedAmount). */
export function serverSockets (server: PixelportServer): WebSocket[] {
  return server.app.pixelportWebSocket.sockets()
}

/** Resolves with the server-side socket of the next connection. */
export function nextServerSocket (server: PixelportServer): Promise<WebSocket> {
  return new Promise((resolve) => server.app.pixelportWebSocket.server.once('connection', resolve))
}
