/**
 * The image catalog over HTTP: create (zero-filled from JSON, or from a raw upload), list, describe, delete.
 */
import type { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { CreateRequest, Layout } from '../../protocol/spec.js'
import { evictableBy } from '../auth/image-access.js'
import type { ServerContext } from '../context.js'
import { clusterPage, DEFAULT_PAGE_SIZE, HTTP_PAGE_BYTES, localPage, MAX_PAGE_SIZE } from '../listing/pages.js'
import { formatOfMediaType, IMAGE_MEDIA_TYPES } from '../formats/formats.js'
import { negotiatePicture } from '../formats/negotiate.js'
import { acceptRawBodies, declaredLength, isStream, OCTET_STREAM } from './body.js'
import { acceptPictureBodies, pictureBodyLimit, pictureTarget } from './format-upload.js'
import { receiveUpload } from './upload-body.js'
import { picturesOf } from './pictures.js'
import { etagOf, matchesIfNoneMatch } from './range.js'
import {
  binaryBody, describeHeaders, descriptorSchema, errorResponses, idParams, listQuery, listSchema, notModified, pictureBody, pictureContent, requestSchemas,
} from './schemas.js'

interface CreateQuery {
  width?: number
  height?: number
  mode?: string
  shape?: string
  typestr?: string
  id?: string
  layout?: Layout
  readonly?: boolean
  frames?: number
}

/** The URL path of an image (ids may contain '/', which travels percent-encoded). */
export function imagePath (id: string): string {
  return `/images/${encodeURIComponent(id)}`
}

function created (reply: FastifyReply, descriptor: ImageDescriptor): ImageDescriptor {
  void reply.code(201).header('location', imagePath(descriptor.id))
  return descriptor
}

/** The query of a raw upload as a create request (`shape=480,640,3` → `[480, 640, 3]`). */
function requestFromQuery (query: CreateQuery): CreateRequest {
  const { shape, ...rest } = query
  return shape === undefined ? rest : { ...rest, shape: shape.split(',').map(Number) }
}

export const imageRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const { store, options } = ctx
  const { createBody, createQuery } = requestSchemas(options)
  const pictures = picturesOf(ctx)
  acceptRawBodies(app)
  acceptPictureBodies(app)

  // Create an image: zero-filled from JSON, from raw C-order bytes with the fields as query parameters, or
  // decoded from a picture file
  app.post<{ Body: CreateRequest | Readable | undefined, Querystring: CreateQuery }>('/images', {
    schema: {
      summary: 'Create an image',
      description: 'Zero-filled from JSON; from raw C-order bytes (application/octet-stream, the fields as query parameters); ' +
        'or decoded from a PNG, JPEG, WebP or TIFF file (only id, layout, readonly and frames as query parameters).',
      tags: ['images'],
      querystring: createQuery,
      body: {
        content: {
          'application/json': { schema: createBody },
          [OCTET_STREAM]: { schema: binaryBody },
          ...Object.fromEntries(IMAGE_MEDIA_TYPES.map((type) => [type, { schema: pictureBody }])),
        },
      },
      response: { 201: descriptorSchema, ...errorResponses },
    },
  }, async (request, reply) => {
    const body = request.body
    request.principal.assertMayCreate(isStream(body) ? request.query.id : (body as CreateRequest | undefined)?.id)
    if (isStream(body)) {
      const mayEvict = evictableBy(request.principal)
      if (formatOfMediaType(request.headers['content-type']) !== null) {
        const limit = pictureBodyLimit(options.maxImageBytes)
        const length = declaredLength(request, limit)
        const target = pictureTarget(request.query)
        return created(reply, await receiveUpload(ctx, request, reply, body, (uploads, source) => uploads.picture(source, target, length, limit, mayEvict)))
      }
      // Streamed straight into reserved shared memory; everything that can be refused is refused first.
      const declared = declaredLength(request, options.maxImageBytes)
      const create = requestFromQuery(request.query)
      return created(reply, await receiveUpload(ctx, request, reply, body, (uploads, source) => uploads.create(source, create, { declared, mayEvict })))
    }
    if (body === undefined || body === null) {
      throw pxpError('PXP_ERR_VALIDATION', 'body is required: JSON { width, height, mode } or { shape, typestr }, or raw bytes')
    }
    return created(reply, store.create(body, undefined, evictableBy(request.principal)))
  })

  // Every image and view, a page at a time
  app.get<{ Querystring: { scope?: 'local' | 'cluster', limit?: number, cursor?: string } }>('/images', {
    schema: {
      summary: 'List images and views',
      description: `One page, in id order: at most \`limit\` descriptors (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}) and ` +
        `about ${HTTP_PAGE_BYTES / 1024 / 1024} MiB of them; \`next\` is the cursor of the following page (null on the last). ` +
        'scope=cluster: the images of every live node of the cluster, each with `node` (owner id) and `url` (owner base URL); ' +
        'without a cluster, the same as local.',
      tags: ['images'],
      querystring: listQuery,
      response: { 200: listSchema, ...errorResponses },
    },
  }, async (request) => {
    const { scope, limit, cursor } = request.query
    if (scope === 'cluster' && ctx.cluster != null) {
      const listing = await ctx.cluster.list()
      return { ...listing, ...clusterPage(listing.images, request.principal, { limit, cursor }, HTTP_PAGE_BYTES) }
    }
    return localPage(store, request.principal, { limit, cursor }, HTTP_PAGE_BYTES)
  })

  // The descriptor of one image (ETag is its generation), or a picture of it when Accept asks for one
  app.get<{ Params: { id: string }, Headers: { 'if-none-match'?: string, accept?: string } }>('/images/:id', {
    schema: {
      summary: 'Describe an image',
      description: 'The descriptor (JSON, the default). With Accept: image/png (or image/jpeg, image/webp, image/tiff, image/*) ' +
        'ranked above application/json and text/html, a picture of the current generation instead, as /images/{id}.png gives it.',
      tags: ['images'],
      params: idParams,
      headers: describeHeaders,
      response: {
        200: {
          description: 'The descriptor, or a picture when Accept asks for one',
          content: { 'application/json': { schema: descriptorSchema }, ...pictureContent(IMAGE_MEDIA_TYPES) },
        },
        304: notModified,
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    // JSON and pictures share this URL: caches must key on Accept.
    void reply.header('vary', 'Accept')
    const format = negotiatePicture(request.headers.accept)
    if (format !== null) return await pictures.send(request, reply, { id: request.params.id, format, options: {}, negotiated: true })
    const descriptor = store.describe(request.params.id)
    const etag = etagOf(descriptor.generation)
    void reply.header('etag', etag)
    if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) return await reply.code(304).send()
    return descriptor
  })

  // Delete an image and every view of it
  app.delete<{ Params: { id: string } }>('/images/:id', {
    schema: {
      summary: 'Delete an image and its views',
      tags: ['images'],
      params: idParams,
      response: { 204: { description: 'Deleted', type: 'null' }, ...errorResponses },
    },
  }, async (request, reply) => {
    store.delete(request.params.id)
    return await reply.code(204).send()
  })
}
