/**
 * An HTTP upload on the server's staging service (server/uploads): started before a byte of the body is
 * read, fed the request body, finished. Every upload route (raw and picture POST, PUT) goes through here.
 */
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { ServerContext } from '../context.js'
import { uploadsOf, type Upload, type UploadRegistry, type UploadSource } from '../uploads/registry.js'
import { isRetryable } from '../uploads/staging-budget.js'
import { feedUpload } from './body.js'

/**
 * Start an upload with `start` (which validates and reserves: a full budget refuses with 503
 * PXP_ERR_STAGING_FULL and `Retry-After` before anything is read), feed it `body` and finish it. However
 * it ends, what it held is given back.
 */
export async function receiveUpload (
  ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, body: Readable | undefined, start: (uploads: UploadRegistry, source: UploadSource) => Upload,
): Promise<ImageDescriptor> {
  let upload: Upload
  try {
    upload = start(uploadsOf(ctx), { transport: 'http', what: `${request.method} ${request.url.split('?')[0]}`, client: request.ip })
  } catch (err) {
    if (isRetryable(err)) void reply.header('retry-after', '1')
    throw err
  }
  try {
    // No body (a request without one): the upload sees zero bytes and its finish says what was missing.
    if (body !== undefined) await feedUpload(body, upload)
  } catch (err) {
    upload.abort()
    throw err
  }
  const descriptor = await upload.finish()
  ctx.metrics?.addBytesReceived('http', upload.received)
  return descriptor
}
