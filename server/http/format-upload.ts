/**
 * `POST /images` with a picture body (`image/png`, `image/jpeg`, `image/webp`, `image/tiff`): decoded into
 * shared memory with the mode the file implies.
 *
 * The order is what keeps a bad or hostile file cheap: read the (bounded) body, check the header against the
 * limits, reserve the id and memory, and only then decode (server/uploads/upload.ts, PictureUpload). Any
 * failure gives everything back, so the store is exactly as before.
 */
import type { FastifyInstance } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { Layout } from '../../protocol/spec.js'
import { IMAGE_MEDIA_TYPES } from '../formats/formats.js'
import type { PictureTarget } from '../uploads/registry.js'

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
 * Where the picture in a POST goes (`id`, `layout`, `readonly`, `frames`). Giving the fields the file
 * defines itself (size, mode) is refused with PXP_ERR_VALIDATION, before anything is read. The upload
 * itself (staged, checked, decoded, created) is the staging service's (server/uploads).
 */
export function pictureTarget (query: PictureQuery): PictureTarget {
  const given = FROM_FILE.filter((k) => query[k] !== undefined)
  if (given.length > 0) {
    throw pxpError('PXP_ERR_VALIDATION', `a picture carries its own size and mode: drop ${given.join(', ')} (id, layout, readonly and frames apply)`)
  }
  return { id: query.id, layout: query.layout, readonly: query.readonly, frames: query.frames }
}
