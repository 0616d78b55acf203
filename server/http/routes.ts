/** HTTP API (placeholder until the routes land in this change). */
import type { FastifyPluginAsync } from 'fastify'
import type { ServerContext } from '../context.js'

export const httpRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.get('/healthz', async () => ({ ok: true, images: ctx.store.size }))
}
