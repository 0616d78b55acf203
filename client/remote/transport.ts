/**
 * How the HTTP client sends one request: `fetch` (browsers, or a fetch the caller gives) or undici
 * (Node.js, loaded on demand from ./undici-transport.ts). Either way the answer's body ends in one buffer
 * (the caller's, or one allocation of its final size), its length checked against Content-Length.
 */
import { isPixelportError, pxpError, type PixelportError } from '../../protocol/errors.js'

/** A request body: bytes, text, or a stream of chunks (sent chunked). */
export type HttpBody = Uint8Array | string | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>

export interface HttpRequest {
  method: string
  /** Absolute URL. */
  url: string
  headers: Record<string, string>
  body?: HttpBody
  signal?: AbortSignal
  /** Receive the body here when it fits (its first Content-Length bytes), instead of a new buffer. */
  into?: Uint8Array
}

export interface HttpResponse {
  status: number
  /** The URL answered (after a redirect: the target's). */
  url: string
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string>
  bytes: Uint8Array
}

export interface HttpTransport {
  send (request: HttpRequest): Promise<HttpResponse>
  /** Let requests in flight finish, then close the connections. */
  close (): Promise<void>
  /** Close every connection now; requests in flight fail. */
  destroy (): Promise<void>
}

/** Node's Buffer where there is one (not in browsers). */
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow (size: number): Uint8Array } }).Buffer

/**
 * `length` bytes for a body to be written over, every one of them (finish() checks the count): not zeroed
 * first where Node.js allows it. Zeroing a fresh 33 MB buffer cost a third of a download's time (measured
 * against undici's own `body.arrayBuffer()`, which does not zero either). A plain Uint8Array over that memory,
 * not a Buffer, so `slice()` still copies.
 */
function allocateBody (length: number): Uint8Array {
  if (NodeBuffer === undefined) return new Uint8Array(length)
  const memory = NodeBuffer.allocUnsafeSlow(length)
  return new Uint8Array(memory.buffer, memory.byteOffset, length)
}

/**
 * Collects a body into one buffer. Into the caller's buffer (`into`, when the Content-Length fits), each
 * chunk is copied straight to its place. Into a fresh buffer, the chunks are kept as they come and joined
 * once at the end, into one allocation of the final size: copying each chunk into fresh memory as it
 * arrives faults that memory in between socket reads, and was 1.13–1.70x slower for a 33 MB body (bench:remote,
 * "undici: joined at the end vs copied on arrival"); undici's own `body.arrayBuffer()` joins at the end
 * too. Either way the byte count is checked against Content-Length as the chunks come.
 */
export class BodySink {
  private readonly out: Uint8Array | null
  private readonly parts: Uint8Array[] = []
  private at = 0

  constructor (private readonly length: number | null, private readonly url: string, into?: Uint8Array) {
    this.out = length !== null && into !== undefined && into.byteLength >= length ? into.subarray(0, length) : null
  }

  add (chunk: Uint8Array): void {
    if (this.length !== null && this.at + chunk.byteLength > this.length) throw pxpError('PXP_ERR_BYTE_COUNT', this.length, `more from ${this.url}`)
    if (this.out === null) this.parts.push(chunk)
    else this.out.set(chunk, this.at)
    this.at += chunk.byteLength
  }

  finish (): Uint8Array {
    if (this.length !== null && this.at !== this.length) throw pxpError('PXP_ERR_BYTE_COUNT', this.length, this.at)
    if (this.out !== null) return this.out
    // One chunk that is a buffer of its own (undici's `arrayBuffer()`): it is the body already.
    const only = this.parts.length === 1 ? this.parts[0] : null
    if (only !== null && only.byteOffset === 0 && only.buffer.byteLength === only.byteLength) return only
    const out = allocateBody(this.at)
    let at = 0
    for (const p of this.parts) {
      out.set(p, at)
      at += p.byteLength
    }
    this.parts.length = 0
    return out
  }
}

/** Content-Length as a number, or null when absent or not a plain count. */
export function contentLength (headers: Record<string, string>): number | null {
  const value = headers['content-length']
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null
}

/** A transport failure as a PixelportError: the caller's abort, else a connection that could not carry the request. */
export function transportError (request: HttpRequest, err: unknown): PixelportError {
  if (isPixelportError(err)) return err as PixelportError
  if (request.signal?.aborted === true) return pxpError('PXP_ERR_ABORTED', `${request.method} ${request.url}`)
  // The network error stays under it as `cause` (its code: ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, …) for callers that sort failures.
  return Object.assign(pxpError('PXP_ERR_CLOSED', `connection to ${request.url} (${(err as Error).message})`), { cause: err })
}

/**
 * Requests through `fetch`: the browser's, Node's, or one the caller gives. Redirects are returned, not
 * followed. It holds no connections of its own (the platform does): close and destroy have nothing to do.
 */
export function fetchTransport (doFetch: typeof fetch): HttpTransport {
  return {
    async send (request) {
      try {
        const init: RequestInit & { duplex?: 'half' } = { method: request.method, headers: request.headers, signal: request.signal, redirect: 'manual' }
        if (request.body !== undefined) {
          init.body = request.body as RequestInit['body']
          if (typeof request.body !== 'string' && !(request.body instanceof Uint8Array)) init.duplex = 'half'
        }
        const res = await doFetch(request.url, init)
        const headers: Record<string, string> = {}
        res.headers.forEach((value, name) => { headers[name] = value })
        const sink = new BodySink(contentLength(headers), request.url, request.into)
        if (res.body !== null) {
          const reader = res.body.getReader()
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            sink.add(value)
          }
        }
        return { status: res.status, url: res.url === '' ? request.url : res.url, headers, bytes: sink.finish() }
      } catch (err) {
        throw transportError(request, err)
      }
    },
    async close () {},
    async destroy () {},
  }
}

/** True in Node.js (where undici is there to load), false in browsers. */
export function isNode (): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string'
}

/**
 * The transport for this platform: undici in Node.js (its `request` reads a body several times faster
 * than `fetch`'s), the platform's fetch elsewhere. `shared`: undici's global connection pool, for the
 * one-off helper functions; otherwise a pool of the caller's own, closed with it.
 */
export async function platformTransport (shared: boolean): Promise<HttpTransport> {
  if (!isNode()) return fetchTransport(globalThis.fetch.bind(globalThis))
  // Not a literal: bundlers for the browser must not follow it (browsers never reach this line).
  const specifier = './undici-transport.js'
  const { undiciTransport } = await import(specifier) as typeof import('./undici-transport.js')
  return await undiciTransport(shared)
}
