/**
 * Requests Node's HTTP parser refuses never reach fastify: a malformed request line, a bad or duplicate
 * Content-Length, Content-Length together with Transfer-Encoding, a NUL or other forbidden byte in a header,
 * a header line without a colon, headers past the size limit, a request that did not arrive in time. Node
 * (and fastify's default handler) answer those with a body of their own or none; this answers them like
 * every other error, `{ code, message }`, and closes the connection: after a framing error nothing else
 * on it can be trusted.
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import { pxpError, type PixelportError } from '../../protocol/errors.js'

/** How long the answer may take to flush before the socket is destroyed anyway. */
const FLUSH_MS = 1000

type ParserError = Error & { code?: string, reason?: string }

/** The registry error for a parser or timeout error. */
export function clientErrorOf (err: ParserError): PixelportError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return pxpError('PXP_ERR_HEADERS_TOO_LARGE', http.maxHeaderSize)
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return pxpError('PXP_ERR_REQUEST_TIMEOUT', 'headers or body not received within the server\'s request timeout')
  }
  // llhttp's reasons are short fixed phrases ("Duplicate Content-Length", "Invalid header value char").
  const what = typeof err.reason === 'string' && err.reason !== '' ? err.reason : 'malformed request'
  return pxpError('PXP_ERR_BAD_REQUEST', `${what} (${err.code ?? 'parse error'})`)
}

/** A complete HTTP/1.1 response carrying `error` as JSON, asking the client to close. */
export function rawErrorResponse (error: PixelportError): string {
  const body = JSON.stringify(error.toJSON())
  return `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/**
 * fastify's `clientErrorHandler` option (Node's 'clientError' event). As Node itself does, it answers only
 * when no response has started on the socket, so a reply already on its way is never corrupted.
 */
export function clientErrorHandler (err: ParserError, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy()
    return
  }
  // end() flushes the answer before the FIN; the timer covers a client that never reads it.
  const timer = setTimeout(() => socket.destroy(), FLUSH_MS)
  timer.unref()
  socket.end(rawErrorResponse(clientErrorOf(err)), () => {
    clearTimeout(timer)
    socket.destroy()
  })
}
