/**
 * Views over HTTP: a region of interest of a block image, sharing its memory (strides + offset).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { ServerContext } from '../context.js'
import type { ViewRequest } from '../store/image-store.js'
import { imagePath } from './image-routes.js'
import { descriptorSchema, errorResponses, idParams, requestSchemas } from './schemas.js'

export const viewRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const { viewBody } = requestSchemas(ctx.options)

  // Create a zero-copy view of a rectangle of an image
  app.post<{ Params: { id: string }, Body: ViewRequest }>('/images/:id/views', {
    schema: {
      summary: 'Create a zero-copy view of a rectangle',
      tags: ['views'],
      params: idParams,
      body: viewBody,
      response: { 201: descriptorSchema, ...errorResponses },
    },
  }, async (request, reply) => {
    request.principal.assertMayCreate(request.body.id)
    const descriptor = ctx.store.createView(request.params.id, request.body)
    void reply.code(201).header('location', imagePath(descriptor.id))
    return descriptor
  })
}
