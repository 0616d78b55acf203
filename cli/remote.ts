/**
 * The client commands' requests, made by the project's HTTP client (`HttpClient`, one per command run). What
 * the CLI adds: a spinner while a slow answer is awaited, and failures sorted into "the server said no"
 * (exit 1) and "no server there" (exit 3).
 */
import type { Readable, Writable } from 'node:stream'
import { HttpClient } from '../client/remote/http.js'
import type { HttpResponse } from '../client/remote/transport.js'
import type { ImageDescriptor } from '../protocol/descriptor.js'
import { isPixelportError } from '../protocol/errors.js'
import type { Connection } from './options.js'
import { CliFailure, refused, unreachable } from './failure.js'
import { startSpinner } from './spinner.js'

export { imagePath } from '../protocol/urls.js'

export interface CallOptions {
  headers?: Record<string, string | number>
  /** Streamed as the request body (give its content-length in headers when known). */
  body?: Readable
  /** Show a spinner with this label (on a TTY, after 1 s) until the answer is in. */
  spinner?: string
  /** Where the spinner draws (only on a TTY). Default process.stderr. */
  stderr?: Writable & { isTTY?: boolean }
}

/** A command's connection to the server: the HTTP client and what the CLI's messages need to know. */
export interface Remote {
  connection: Connection
  client: HttpClient
}

/** How long the probe after a broken upload waits for the server's refusal. */
const PROBE_MS = 2000

/**
 * Run `body` with an HttpClient for `connection`, closed at the end whatever happens. `redirect`: reads
 * ask a cluster node for a redirect to the owner (`Prefer: redirect`) and follow it — only without a
 * token: the CLI has no list of origins it trusts with the token, and HttpClient sends it to no other
 * origin, so a token-protected read stays on the node named, which forwards it.
 */
export async function withRemote<T> (connection: Connection, body: (remote: Remote) => Promise<T>, options: { redirect?: boolean } = {}): Promise<T> {
  const client = new HttpClient(connection.url, {
    token: connection.token,
    headers: { 'user-agent': 'pixelport-cli' },
    redirect: options.redirect === true && connection.token === undefined,
  })
  try {
    return await body({ connection, client })
  } finally {
    await client.close()
  }
}

/** A PixelportError from the HTTP client as the CLI's failure: the server's refusal, or no connection. */
export function failureOf (err: unknown, connection: Connection): Error {
  if (!isPixelportError(err)) return err as Error
  if (err.code === 'PXP_ERR_CLOSED') return unreachable(connection.url, networkCode(err) ?? err.message)
  return refused(err.code, err.message, connection.tokenSource)
}

/**
 * What went wrong on the network, from the error under the transport's PXP_ERR_CLOSED: its code
 * (ECONNREFUSED, ECONNRESET, EPIPE, UND_ERR_SOCKET), else its message.
 */
function networkCode (err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: string, message?: string, cause?: { code?: string, message?: string } } }).cause
  return cause?.cause?.code ?? cause?.code ?? cause?.message
}

/**
 * `body` as bytes for the request, remembering the error that ended it: a local one (a file that cannot be
 * read, stdin of the wrong length) is the user's to see, not a network failure.
 */
function tracked (body: Readable): { bytes: AsyncIterable<Uint8Array>, error: () => unknown } {
  let error: unknown
  // An error before the request starts reading (stdin that was empty) must not go unhandled: kept, and
  // thrown by the iterator below once it starts.
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
 * sent, so nothing is stored). A server that answers early (507 before the upload ends) closes while we
 * still send, and the reset can discard its answer: undici then reports `write EPIPE` or ECONNRESET, not
 * the answer (most runs of a 64 MiB file refused on its headers, here). A server refusing on the headers
 * (507, 413, 401, 404) answers this one at once without reading anything.
 */
async function probeRefusal ({ client, connection }: Remote, path: string, method: string, headers: Record<string, string>): Promise<Error | null> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), PROBE_MS)
  // One byte of an upload that never completes: the headers go out, the server decides on them.
  async function * never (): AsyncGenerator<Uint8Array> {
    yield Uint8Array.of(0)
    await new Promise((resolve) => abort.signal.addEventListener('abort', resolve, { once: true }))
  }
  try {
    await client.request(method, path, { headers, body: never(), signal: abort.signal })
    return null
  } catch (err) {
    return isPixelportError(err) && err.code !== 'PXP_ERR_CLOSED' && err.code !== 'PXP_ERR_ABORTED' ? failureOf(err, connection) : null
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

/**
 * Send one request and resolve with the answer (its body read whole) once its status is 2xx. Rejects with
 * CliFailure: exit 1 for an error response, exit 3 when the connection fails.
 */
export async function call (remote: Remote, method: string, path: string, options: CallOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name] = String(value)
  const body = options.body === undefined ? undefined : tracked(options.body)
  const stopSpinner = options.spinner !== undefined ? startSpinner(options.spinner, options.stderr === undefined ? {} : { stream: options.stderr }) : () => {}
  try {
    return await remote.client.request(method, path, { headers, body: body?.bytes })
  } catch (err) {
    const local = body?.error()
    if (local !== undefined && (local instanceof CliFailure || ['ENOENT', 'EACCES', 'EISDIR'].includes((local as NodeJS.ErrnoException).code ?? ''))) throw local
    if (body !== undefined && isPixelportError(err) && err.code === 'PXP_ERR_CLOSED') {
      const refusal = await probeRefusal(remote, path, method, headers)
      throw refusal ?? unreachable(remote.connection.url, `${networkCode(err) ?? 'connection closed'} during the upload`)
    }
    throw failureOf(err, remote.connection)
  } finally {
    stopSpinner()
  }
}

/** A request whose JSON answer is wanted whole. */
export async function callJson<T> (remote: Remote, method: string, path: string, options: CallOptions = {}): Promise<T> {
  const { bytes } = await call(remote, method, path, options)
  return (bytes.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(bytes))) as T
}

/** An image's descriptor (GET /images/ID). */
export async function describe (remote: Remote, id: string): Promise<ImageDescriptor> {
  try {
    return await remote.client.describe(id)
  } catch (err) {
    throw failureOf(err, remote.connection)
  }
}
