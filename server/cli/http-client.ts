/**
 * Plain HTTP for the client commands: streamed bodies both ways, the token on every request, and failures
 * sorted into "the server said no" (exit 1) and "no server there" (exit 3).
 */
import http from 'node:http'
import https from 'node:https'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Connection } from './options.js'
import { refused, unreachable } from './failure.js'
import { startSpinner } from './spinner.js'

export interface RequestOptions {
  headers?: Record<string, string | number>
  /** Streamed as the request body (with Content-Length from headers when known). */
  body?: Readable
  /** Show a spinner with this label (on a TTY, after 1 s) until the response starts. */
  spinner?: string
}

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
      // A server that answers early (e.g. 404 before the upload ends) may reset the upload: its response wins.
      reject(unreachable(connection.url, err.code ?? err.message))
    })
    if (options.body === undefined) {
      req.end()
    } else {
      pipeline(options.body, req).catch((err: NodeJS.ErrnoException) => {
        // Local read errors matter; a reset from the server shows up as its response or as req's 'error'.
        if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') reject(err)
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
