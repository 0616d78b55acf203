/**
 * The image catalog over HTTP: create (zero-filled from JSON, or from a raw upload), list, describe, delete.
 */
import type { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { specFromRequest, type CreateRequest, type Layout } from '../../protocol/spec.js'
import type { ServerContext } from '../context.js'
import { acceptRawBodies, declaredLength, isStream, OCTET_STREAM, receiveExactly } from './body.js'
import { etagOf, matchesIfNoneMatch } from './range.js'
import {
  binaryBody, conditionalHeaders, descriptorSchema, errorResponses, idParams, listSchema, notModified, requestSchemas,
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
  acceptRawBodies(app)

  /**
   * Stream a raw upload into reserved shared memory. Everything that can be refused is refused before the
   * memory is reserved; once it is, any failure (short body, disconnect) gives it all back.
   */
  async function createFromUpload (request: CreateRequest, body: Readable, length: number | undefined): Promise<ImageDescriptor> {
    const spec = specFromRequest(request, store.limits)
    if (length !== undefined && length !== spec.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', spec.byteLength, length)
    const pending = store.beginCreate(request)
    try {
      await receiveExactly(body, spec.byteLength, (chunk) => pending.write(chunk))
      return pending.commit()
    } catch (err) {
      pending.abort()
      throw err
    }
  }

  // Create an image: zero-filled from JSON, or from raw C-order bytes with the fields as query parameters
  app.post<{ Body: CreateRequest | Readable | undefined, Querystring: CreateQuery }>('/images', {
    schema: {
      querystring: createQuery,
      body: {
        content: {
          'application/json': { schema: createBody },
          [OCTET_STREAM]: { schema: binaryBody },
        },
      },
      response: { 201: descriptorSchema, ...errorResponses },
    },
  }, async (request, reply) => {
    const body = request.body
    if (isStream(body)) {
      const length = declaredLength(request, options.maxImageBytes)
      return created(reply, await createFromUpload(requestFromQuery(request.query), body, length))
    }
    if (body === undefined || body === null) {
      throw pxpError('PXP_ERR_VALIDATION', 'body is required: JSON { width, height, mode } or { shape, typestr }, or raw bytes')
    }
    return created(reply, store.create(body))
  })

  // Every image and view
  app.get('/images', {
    schema: { response: { 200: listSchema, ...errorResponses } },
  }, async () => ({ images: store.list() }))

  // The descriptor of one image; ETag is its generation
  app.get<{ Params: { id: string }, Headers: { 'if-none-match'?: string } }>('/images/:id', {
    schema: {
      params: idParams,
      headers: conditionalHeaders,
      response: { 200: descriptorSchema, 304: notModified, ...errorResponses },
    },
  }, async (request, reply) => {
    const descriptor = store.describe(request.params.id)
    const etag = etagOf(descriptor.generation)
    void reply.header('etag', etag)
    if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) return await reply.code(304).send()
    return descriptor
  })

  // Delete an image and every view of it
  app.delete<{ Params: { id: string } }>('/images/:id', {
    schema: {
      params: idParams,
      response: { 204: { description: 'Deleted', type: 'null' }, ...errorResponses },
    },
  }, async (request, reply) => {
    store.delete(request.params.id)
    return await reply.code(204).send()
  })
}
