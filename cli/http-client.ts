/**
 * Plain HTTP for the client commands: streamed bodies both ways, the token on every request, and failures
 * sorted into "the server said no" (exit 1) and "no server there" (exit 3).
 */
import http from 'node:http'
import https from 'node:https'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Connection } from './options.js'
import { CliFailure, refused, unreachable } from './failure.js'
import { startSpinner } from './spinner.js'

export interface RequestOptions {
  headers?: Record<string, string | number>
  /** Streamed as the request body (with Content-Length from headers when known). */
  body?: Readable
  /** Show a spinner with this label (on a TTY, after 1 s) until the response starts. */
  spinner?: string
}

/** How long the probe after a broken upload waits for the server's refusal. */
const PROBE_MS = 2000

/** Headers sent with every request. */
function baseHeaders (connection: Connection): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': 'pixelport-cli' }
  if (connection.token !== undefined) headers.authorization = `Bearer ${connection.token}`
  return headers
}

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Turn an error response into a CliFailure carrying the server's `code` and message. */
async function failureOf (response: http.IncomingMessage, connection: Connection): Promise<Error> {
  const text = (await readAll(response)).toString('utf8')
  try {
    const body = JSON.parse(text) as { code?: unknown, message?: unknown }
    if (typeof body.code === 'string') return refused(body.code, String(body.message ?? ''), connection.tokenSource)
  } catch {
    // not JSON: fall through to the status line
  }
  return refused(`HTTP ${response.statusCode ?? '?'}`, text.slice(0, 200) || (response.statusMessage ?? ''))
}

/**
 * After an upload broke off: send the same request line and headers without the body and return the
 * server's refusal, or null when it only waits for the body (it is then dropped: nothing was sent, so
 * nothing is stored).
 */
async function probeRefusal (connection: Connection, method: string, url: URL, headers: Record<string, string | number>): Promise<Error | null> {
  const transport = url.protocol === 'https:' ? https : http
  return await new Promise((resolve) => {
    const req = transport.request(url, { method, headers })
    const timer = setTimeout(() => { req.destroy(); resolve(null) }, PROBE_MS)
    req.once('response', (response) => {
      clearTimeout(timer)
      if ((response.statusCode ?? 500) < 400) {
        req.destroy()
        resolve(null)
        return
      }
      failureOf(response, connection).then(resolve, () => resolve(null)).finally(() => req.destroy())
    })
    req.once('error', () => { clearTimeout(timer); resolve(null) })
    req.flushHeaders()
  })
}

/**
 * Send one request and resolve with the response once its status is below 400 (the body is left unread for
 * the caller to stream). Rejects with CliFailure: exit 1 for an error response, exit 3 when the connection fails.
 */
export async function request (connection: Connection, method: string, path: string, options: RequestOptions = {}): Promise<http.IncomingMessage> {
  const url = new URL(connection.url + path)
  const transport = url.protocol === 'https:' ? https : http
  const stopSpinner = options.spinner !== undefined ? startSpinner(options.spinner) : () => {}
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = transport.request(url, { method, headers: { ...baseHeaders(connection), ...options.headers } })
    req.once('response', resolve)
    req.once('error', (err: NodeJS.ErrnoException) => {
      // A server that answers early (e.g. 507 before the upload ends) may close while we still send: the
      // write fails (EPIPE, ECONNRESET) but its response may already be on its way. Its response wins.
      // The reset can discard that response, though: ask again with the same headers and no body, which a
      // server refusing on the headers (507, 413, 401, 404) answers at once without reading anything.
      if (options.body !== undefined && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) {
        void probeRefusal(connection, method, url, { ...baseHeaders(connection), ...options.headers })
          .then((refusal) => reject(refusal ?? unreachable(connection.url, `${err.code!} during the upload`)))
        return
      }
      reject(unreachable(connection.url, err.code ?? err.message))
    })
    if (options.body === undefined) {
      req.end()
    } else {
      pipeline(options.body, req).catch((err: NodeJS.ErrnoException) => {
        // Local read errors matter (and a body of the wrong length, a CliFailure); a reset from the server
        // shows up as its response or as req's 'error'.
        if (err instanceof CliFailure || err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') {
          req.destroy()
          reject(err)
        }
      })
    }
  }).finally(stopSpinner)
  if ((response.statusCode ?? 500) >= 400) throw await failureOf(response, connection)
  return response
}

/** A request whose JSON answer is wanted whole. */
export async function requestJson<T> (connection: Connection, method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(connection, method, path, options)
  const text = (await readAll(response)).toString('utf8')
  return (text === '' ? undefined : JSON.parse(text)) as T
}
