/**
 * `GET /metrics`: Prometheus text exposition of the server's own registry.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { ServerContext } from '../context.js'
import { errorResponses } from './schemas.js'

export const metricsRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const metrics = ctx.metrics
  if (metrics === undefined) return
  app.get('/metrics', {
    config: { access: 'admin' },
    schema: {
      summary: 'Prometheus metrics',
      description: 'Images, memory (used, free, largest free run, blocks), generations committed, bytes streamed, ' +
        'subscriptions, snapshots, leases and connections; docs/http.md lists every metric.',
      tags: ['operations'],
      response: { 200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses },
    },
  }, async (_request, reply) => {
    const text = await metrics.scrape()
    return await reply.type(metrics.contentType).send(text)
  })
}
