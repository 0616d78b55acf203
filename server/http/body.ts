/**
 * Raw request bodies: `application/octet-stream` is handed to the handler as the request stream, so pixel
 * uploads go straight to their destination chunk by chunk instead of being buffered whole.
 */
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { Upload } from '../uploads/registry.js'

export const OCTET_STREAM = 'application/octet-stream'

/** Let routes in `app`'s scope receive octet-stream bodies as the raw request stream. */
export function acceptRawBodies (app: FastifyInstance): void {
  app.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => done(null, payload))
}

/**
 * JSON as fastify parses it (prototype-poisoning checks included), except that an empty body is no body
 * rather than an error: many clients send `Content-Type: application/json` on every request, DELETE included.
 */
export function lenientJson (app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined)
    else parse(request, body as string, done)
  })
}

export function isStream (body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function'
}

/**
 * The Content-Length a client declared, or undefined for a chunked body. Checked against `limit` and
 * `expected` (when known) before the caller allocates anything.
 */
export function declaredLength (request: FastifyRequest, limit: number, expected?: number): number | undefined {
  const header = request.headers['content-length']
  if (header === undefined) return undefined
  // Node's parser has already refused a malformed Content-Length, so this is a plain decimal.
  const length = Number(header)
  if (length > limit) throw pxpError('PXP_ERR_BODY_TOO_LARGE', length, limit)
  if (expected !== undefined && length !== expected) throw pxpError('PXP_ERR_BYTE_COUNT', expected, length)
  return length
}

function noop (): void {}

/**
 * Feed `stream` to `upload` chunk by chunk as it arrives, to its end. The upload counts and checks the
 * bytes (too many: its error); a client that goes away first is PXP_ERR_ABORTED; the upload's abort (a
 * timeout, shutdown) ends the read with its reason. On failure the stream is left paused and unread (the
 * response then closes the connection, see `closeUnreadBody`) and the caller aborts the upload.
 */
export async function feedUpload (stream: Readable, upload: Upload): Promise<void> {
  const what = upload.byteLength > 0 ? `${upload.byteLength} bytes` : 'the body'
  if (stream.destroyed) throw pxpError('PXP_ERR_ABORTED', `the client went away before sending ${what}`)
  const signal = upload.signal
  if (signal?.aborted === true) throw signal.reason
  await new Promise<void>((resolve, reject) => {
    let received = 0
    const detach = (): void => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onGone)
      stream.off('close', onGone)
      signal?.removeEventListener('abort', onAbort)
      // A disconnect after we stopped listening still emits 'error'; unheard, it would crash the process.
      stream.on('error', noop)
    }
    const fail = (err: unknown): void => {
      detach()
      stream.pause()
      reject(err)
    }
    function onData (chunk: Buffer): void {
      received += chunk.byteLength
      try {
        upload.write(chunk)
      } catch (err) {
        fail(err)
      }
    }
    function onEnd (): void {
      detach()
      resolve()
    }
    function onGone (): void {
      fail(pxpError('PXP_ERR_ABORTED', `the client went away after ${received} bytes, before ${what} had come`))
    }
    function onAbort (): void {
      fail(signal!.reason)
    }
    stream.on('data', onData)
    signal?.addEventListener('abort', onAbort, { once: true })
    stream.once('end', onEnd)
    stream.once('error', onGone)
    stream.once('close', onGone)
    stream.resume()
  })
}

/**
 * onSend hook: a response sent before the request body was read (a refused upload) closes the connection,
 * so Node does not read and discard the rest of a possibly huge body to keep the connection alive.
 */
export async function closeUnreadBody (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!request.raw.complete) void reply.header('connection', 'close')
}
