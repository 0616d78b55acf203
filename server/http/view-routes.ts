/**
 * Views over HTTP: a region of interest of a block image, sharing its memory (strides + offset).
 */
import type { FastifyPluginAsync } from 'fastify'
import { evictableBy } from '../auth/image-access.js'
import type { ServerContext } from '../context.js'
import type { ViewRequest } from '../store/image-store.js'
import { imagePath } from './image-routes.js'
import { descriptorSchema, errorResponses, idParams, requestSchemas } from './schemas.js'

export const viewRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const { viewBody } = requestSchemas(ctx.options)

  // Create a zero-copy view of a rectangle of an image
  // A view shows its base's pixels: making one needs `read` on the base (the auth hooks check it, views of
  // views included) and `write` on the new id; writing through it later needs `write` on the base too.
  app.post<{ Params: { id: string }, Body: ViewRequest }>('/images/:id/views', {
    config: { access: 'read' },
    schema: {
      summary: 'Create a zero-copy view of a rectangle',
      tags: ['views'],
      params: idParams,
      body: viewBody,
      response: { 201: descriptorSchema, ...errorResponses },
    },
  }, async (request, reply) => {
    request.principal.assertMayCreate(request.body.id)
    const descriptor = ctx.store.createView(request.params.id, request.body, evictableBy(request.principal))
    void reply.code(201).header('location', imagePath(descriptor.id))
    return descriptor
  })
}
