/**
 * The client commands' requests, made by client/remote's HTTP layer (`request`): what the CLI adds is the
 * token on every request, a spinner while a slow answer is awaited, and failures sorted into "the server said
 * no" (exit 1) and "no server there" (exit 3).
 */
import { Readable, type Writable } from 'node:stream'
import { fetchDescriptor, imageUrl, request, type RequestOptions } from '../client/remote/http.js'
import type { ImageDescriptor } from '../protocol/descriptor.js'
import { isPixelportError } from '../protocol/errors.js'
import type { Connection } from './options.js'
import { CliFailure, refused, unreachable } from './failure.js'
import { startSpinner } from './spinner.js'

export interface CallOptions {
  headers?: Record<string, string | number>
  /** Streamed as the request body (give its content-length in headers when known). */
  body?: Readable
  /** Show a spinner with this label (on a TTY, after 1 s) until the response starts. */
  spinner?: string
  /** Where the spinner draws (only on a TTY). Default process.stderr. */
  stderr?: Writable & { isTTY?: boolean }
}

/** How long the probe after a broken upload waits for the server's refusal. */
const PROBE_MS = 2000

/** The path of an image (or of its `/data`, `.png`, … with `suffix`), as client/remote spells it. */
export function imagePath (id: string, suffix = ''): string {
  return imageUrl('', id, suffix)
}

/** Headers sent with every request. */
function headersOf (connection: Connection, extra: Record<string, string | number> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': 'pixelport-cli' }
  if (connection.token !== undefined) headers.authorization = `Bearer ${connection.token}`
  for (const [name, value] of Object.entries(extra)) headers[name] = String(value)
  return headers
}

/** A PixelportError from client/remote as the CLI's failure: the server's refusal, or no connection. */
function failureOf (err: unknown, connection: Connection): Error {
  if (!isPixelportError(err)) return err as Error
  if (err.code === 'PXP_ERR_CLOSED') return unreachable(connection.url, networkCode(err) ?? err.message)
  return refused(err.code, err.message, connection.tokenSource)
}

/**
 * What went wrong on the network, from the error under fetch's TypeError: its code (ECONNREFUSED,
 * ECONNRESET, EPIPE, UND_ERR_SOCKET), else its message ("bad port": fetch refuses a few ports by rule).
 */
function networkCode (err: unknown): string | undefined {
  const cause = (err as { cause?: { cause?: { code?: string, message?: string } } }).cause?.cause
  return cause?.code ?? cause?.message
}

/**
 * `body` as bytes for fetch, remembering the error that ended it: a local one (a file that cannot be read,
 * stdin of the wrong length) is the user's to see, not a network failure.
 */
function tracked (body: Readable): { bytes: AsyncIterable<Uint8Array>, error: () => unknown } {
  let error: unknown
  // An error before fetch starts reading (stdin that was empty) must not go unhandled: kept, and thrown by
  // the iterator below once it starts.
  body.on('error', (err) => { error ??= err })
  async function * bytes (): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of body) yield chunk as Uint8Array
    } catch (err) {
      error = err
      throw err
    }
  }
  return { bytes: bytes(), error: () => error }
}

/**
 * After an upload broke off: send the same request line and headers with a body that never ends, and return
 * the server's refusal, or null when it only waits for the body (the request is then dropped: nothing was
 * sent, so nothing is stored). A server that answers early (507 before the upload ends) may close while we
 * still send, and the reset can discard its answer: a server refusing on the headers (507, 413, 401, 404)
 * answers this one at once without reading anything.
 */
async function probeRefusal (connection: Connection, path: string, method: string, headers: Record<string, string>): Promise<Error | null> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), PROBE_MS)
  // fetch sends the headers with the first bytes of the body: one byte, of an upload that never completes.
  async function * never (): AsyncGenerator<Uint8Array> {
    yield Uint8Array.of(0)
    await new Promise((resolve) => abort.signal.addEventListener('abort', resolve, { once: true }))
  }
  try {
    await request(connection.url, path, { method, headers, body: never(), signal: abort.signal })
    return null
  } catch (err) {
    return isPixelportError(err) && err.code !== 'PXP_ERR_CLOSED' && err.code !== 'PXP_ERR_ABORTED' ? failureOf(err, connection) : null
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

/**
 * Send one request and resolve with the response once its status is below 400 (the body is left unread for
 * the caller to stream). Rejects with CliFailure: exit 1 for an error response, exit 3 when the connection fails.
 */
export async function call (connection: Connection, method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers = headersOf(connection, options.headers)
  const body = options.body === undefined ? undefined : tracked(options.body)
  const init: RequestOptions = { method, headers }
  if (body !== undefined) init.body = body.bytes
  const stopSpinner = options.spinner !== undefined ? startSpinner(options.spinner, options.stderr === undefined ? {} : { stream: options.stderr }) : () => {}
  try {
    return await request(connection.url, path, init)
  } catch (err) {
    const local = body?.error()
    if (local !== undefined && (local instanceof CliFailure || ['ENOENT', 'EACCES', 'EISDIR'].includes((local as NodeJS.ErrnoException).code ?? ''))) throw local
    if (body !== undefined && isPixelportError(err) && err.code === 'PXP_ERR_CLOSED') {
      const refusal = await probeRefusal(connection, path, method, headers)
      throw refusal ?? unreachable(connection.url, `${networkCode(err) ?? 'connection closed'} during the upload`)
    }
    throw failureOf(err, connection)
  } finally {
    stopSpinner()
  }
}

/** An image's descriptor (GET /images/ID). */
export async function describe (connection: Connection, id: string): Promise<ImageDescriptor> {
  try {
    return await fetchDescriptor(connection.url, id, { headers: headersOf(connection) })
  } catch (err) {
    throw failureOf(err, connection)
  }
}

/** A request whose JSON answer is wanted whole. */
export async function callJson<T> (connection: Connection, method: string, path: string, options: CallOptions = {}): Promise<T> {
  const response = await call(connection, method, path, options)
  const text = await response.text()
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/** A response body as a Node.js stream, for pipeline() into a file or stdout. */
export function bodyStream (response: Response): Readable {
  return response.body === null ? Readable.from([]) : Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)
}
