/**
 * `POST /images` with a picture body (`image/png`, `image/jpeg`, `image/webp`, `image/tiff`): decoded into
 * shared memory with the mode the file implies.
 *
 * The order is what keeps a bad or hostile file cheap: read the (bounded) body, check the header against the
 * limits, reserve the id and memory, and only then decode. Any failure gives everything back, so the store
 * is exactly as before.
 */
import type { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { Layout } from '../../protocol/spec.js'
import type { ServerContext } from '../context.js'
import type { MayEvict } from '../store/image-store.js'
import { decodePixels, planDecode } from '../formats/decode.js'
import { IMAGE_MEDIA_TYPES } from '../formats/formats.js'
import type { UploadTicket } from '../uploads/registry.js'
import { receiveAll } from './body.js'

export interface PictureQuery {
  id?: string
  layout?: Layout
  readonly?: boolean
  frames?: number
  /** Not allowed with a picture (the file has them): present only to be refused. */
  width?: unknown
  height?: unknown
  mode?: unknown
  shape?: unknown
  typestr?: unknown
}

/**
 * The largest picture body: maxImageBytes plus what a container adds to incompressible pixels (deflate's
 * stored blocks, chunk and IFD headers), so any image the server accepts raw it also accepts as a file.
 */
export function pictureBodyLimit (maxImageBytes: number): number {
  return maxImageBytes + Math.ceil(maxImageBytes / 64) + 64 * 1024
}

/** Fields a picture file defines itself; giving them as well is a mistake worth hearing about. */
const FROM_FILE = ['width', 'height', 'mode', 'shape', 'typestr'] as const

/** Let routes in `app`'s scope receive picture bodies as the raw request stream. */
export function acceptPictureBodies (app: FastifyInstance): void {
  app.addContentTypeParser(IMAGE_MEDIA_TYPES as string[], (_request, payload, done) => done(null, payload))
}

/**
 * Create an image from the picture file in `body` (`length`: its declared Content-Length, already checked
 * against pictureBodyLimit). Throws PXP_ERR_BAD_IMAGE for anything undecodable, PXP_ERR_TOO_LARGE /
 * PXP_ERR_BAD_SHAPE for an image over the limits (checked from the header, before decoding).
 * `ticket` holds the file's bytes in the staging budget (growing with a body of unknown length) and, once
 * the header is read, the decoded pixels' too: PXP_ERR_STAGING_FULL when they do not fit.
 */
export async function createFromPicture (ctx: ServerContext, query: PictureQuery, body: Readable, length: number | undefined, ticket?: UploadTicket, mayEvict?: MayEvict): Promise<ImageDescriptor> {
  const given = FROM_FILE.filter((k) => query[k] !== undefined)
  if (given.length > 0) {
    throw pxpError('PXP_ERR_VALIDATION', `a picture carries its own size and mode: drop ${given.join(', ')} (id, layout, readonly and frames apply)`)
  }
  const { store, options } = ctx
  const file = await receiveAll(body, pictureBodyLimit(options.maxImageBytes), length, ticket)
  const plan = await planDecode(file, store.limits)
  ticket?.grow(plan.spec.byteLength)
  const pending = store.beginCreate({ ...plan.request, id: query.id, layout: query.layout, readonly: query.readonly, frames: query.frames }, undefined, mayEvict)
  try {
    pending.write(await decodePixels(file, plan))
    const descriptor = pending.commit()
    ctx.metrics?.addBytesReceived('http', file.byteLength)
    return descriptor
  } catch (err) {
    pending.abort()
    throw err
  }
}
