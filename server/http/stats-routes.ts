/**
 * Health and memory figures.
 *
 * Both are store-wide: image counts and memory use tell a token limited to `cam1/*` how much others store
 * and when. So /stats answers only admin tokens and tokens for every id, and /healthz (public) gives a
 * count only to them.
 */
import type { FastifyPluginAsync } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
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
  }, async (request) => {
    if (!request.principal.seesStoreWide) throw pxpError('PXP_ERR_FORBIDDEN', 'store-wide statistics need the admin scope or a token for every id')
    return { ...ctx.store.stats(), snapshots: ctx.snapshots.stats() }
  })

  // Liveness; public, so the image count only for callers who may see the whole store
  app.get('/healthz', {
    config: { access: 'public' },
    schema: { summary: 'Liveness', tags: ['operations'], security: [], response: { 200: healthSchema, ...errorResponses } },
  }, async (request) => request.principal.seesStoreWide ? { ok: true, images: ctx.store.size } : { ok: true })
}
