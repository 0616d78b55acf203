/**
 * `GET /cluster`: nodes, image counts, Redis state (its URL with any password redacted), for admin tokens
 * and tokens for every id. Registered inside the HTTP API plugin, so its hooks
 * (auth) apply; the forwarding of per-image requests is a hook of that plugin (forward.ts).
 */
import type { FastifyPluginAsync } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { ServerContext } from '../context.js'

const nodeSchema = {
  type: 'object',
  required: ['id', 'url', 'startedAt', 'lastSeen', 'images', 'self'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    startedAt: { type: 'integer', description: 'ms since the epoch (0: unknown, Redis unreachable)' },
    lastSeen: { type: 'integer', description: 'Last heartbeat, ms since the epoch' },
    images: { type: 'integer', description: 'Images and views the node owns' },
    self: { type: 'boolean', description: 'The node that answered' },
  },
} as const

const clusterSchema = {
  type: 'object',
  required: ['enabled', 'node', 'url', 'redis', 'nodes', 'partial'],
  properties: {
    enabled: { type: 'boolean' },
    node: { type: 'string' },
    url: { type: 'string' },
    redis: {
      type: 'object',
      properties: { url: { type: 'string' }, status: { type: 'string' }, error: { type: ['string', 'null'] } },
    },
    nodes: { type: 'array', items: nodeSchema },
    partial: { type: 'boolean', description: 'True when Redis is unreachable: only this node is listed' },
  },
} as const

export const clusterRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const cluster = ctx.cluster
  if (cluster === null || cluster === undefined) return
  app.get('/cluster', {
    schema: {
      summary: 'Cluster membership',
      description: 'Live nodes (heartbeat current), the images each owns, and the state of this node\'s Redis connection.',
      tags: ['cluster'],
      response: { 200: clusterSchema },
    },
  }, async (request) => {
    // Node list, per-node image counts and the Redis address are store-wide: not for tokens limited to some ids.
    if (!request.principal.seesStoreWide) throw pxpError('PXP_ERR_FORBIDDEN', 'cluster status needs the admin scope or a token for every id')
    return await cluster.status()
  })
}
