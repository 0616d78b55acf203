/**
 * The HTTP API: every route, with the validation and hooks they share.
 *
 * Registered as one encapsulated plugin, so its validator compiler, content-type parsers and hooks apply
 * to these routes only and never to other transports mounted on the same fastify instance.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { assertValidId } from '../../protocol/ids.js'
import { remoteViewAccessHook, viewAccessHook } from '../auth/http-auth.js'
import { forwardToOwner } from '../cluster/forward.js'
import { redirectToOwner } from '../cluster/redirect.js'
import { clusterRoutes } from '../cluster/routes.js'
import type { ServerContext } from '../context.js'
import { closeUnreadBody, lenientJson } from './body.js'
import { dataRoutes } from './data-routes.js'
import { formatRoutes } from './format-routes.js'
import { imageRoutes } from './image-routes.js'
import { metricsRoutes } from './metrics-routes.js'
import { statsRoutes } from './stats-routes.js'
import { createValidatorCompiler } from './validator.js'
import { viewRoutes } from './view-routes.js'
import { viewerRoutes } from './viewer-routes.js'

/** Malformed ids are PXP_ERR_BAD_ID on every route, before the schema or the store looks at them. */
async function checkIdParam (request: FastifyRequest): Promise<void> {
  const id = (request.params as { id?: unknown } | undefined)?.id
  if (id !== undefined) assertValidId(id)
}

export const httpRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.setValidatorCompiler(createValidatorCompiler())
  // Bodies are JSON, raw bytes or (POST /images) picture files; anything else is PXP_ERR_UNSUPPORTED_MEDIA_TYPE.
  app.removeContentTypeParser('text/plain')
  lenientJson(app)
  // Reaching a view's pixels needs the scope on its base as well (server/auth/image-access.ts).
  app.addHook('onRequest', viewAccessHook(ctx.store))
  app.addHook('preValidation', checkIdParam)
  // `?redirect=1` / `Prefer: redirect`: a 307 to the owner of another node's image (before the query schema, which never sees the parameter).
  app.addHook('preValidation', redirectToOwner(ctx.cluster ?? null, ctx.store))
  app.addHook('onSend', closeUnreadBody)
  // In a cluster, a per-image request for an image another node owns is streamed from/to that node.
  if (ctx.cluster != null) {
    const cluster = ctx.cluster
    app.addHook('preHandler', remoteViewAccessHook(async (id) => await cluster.locate(id), ctx.store))
    app.addHook('preHandler', forwardToOwner(cluster, ctx.store))
  }
  await app.register(imageRoutes, ctx)
  await app.register(viewRoutes, ctx)
  await app.register(dataRoutes, ctx)
  await app.register(statsRoutes, ctx)
  await app.register(formatRoutes, ctx)
  await app.register(metricsRoutes, ctx)
  await app.register(clusterRoutes, ctx)
  await app.register(viewerRoutes)
}
