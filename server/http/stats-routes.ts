/**
 * Health and memory figures.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { ServerContext } from '../context.js'
import { errorResponses, healthSchema, statsSchema } from './schemas.js'

export const statsRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  // Store memory (blocks, capacity, used, free, largest free run), image counts and snapshot memory
  app.get('/stats', {
    schema: {
      summary: 'Memory and image statistics',
      tags: ['operations'],
      response: { 200: statsSchema, ...errorResponses },
    },
  }, async () => ({ ...ctx.store.stats(), snapshots: ctx.snapshots.stats() }))

  // Liveness
  // Liveness; public, so the image count only for callers who may read
  app.get('/healthz', {
    config: { access: 'public' },
    schema: { summary: 'Liveness', tags: ['operations'], security: [], response: { 200: healthSchema, ...errorResponses } },
  }, async (request) => request.principal.has('read') ? { ok: true, images: ctx.store.size } : { ok: true })
}
