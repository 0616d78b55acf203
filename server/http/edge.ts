/**
 * What every request meets before its route: the request guard (target form, Host, Origin; see
 * request-guard.ts), CORS (off unless origins are configured), load shedding
 * when the event loop is overloaded (@fastify/under-pressure), and authentication (server/auth).
 *
 * Installed on the root instance before any route, so hooks cover every route and the WebSocket upgrade.
 * Order matters: CORS headers go on first, so a browser can read even a 401 or 503.
 */
import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import { installHttpAuth } from '../auth/http-auth.js'
import type { ResolvedOptions } from '../options.js'
import { installRequestGuard } from './request-guard.js'

/** Headers a cross-origin page may read from our responses. */
const EXPOSED_HEADERS = [
  'etag', 'location', 'content-range', 'accept-ranges', 'content-disposition', 'x-pixelport-generation',
  'x-pixelport-mode', 'x-pixelport-shape', 'x-pixelport-typestr', 'x-pixelport-value-range', 'x-pixelport-descriptor', 'preference-applied', 'retry-after',
]

/** Liveness must answer even when overloaded: an overloaded process is alive, just not ready. */
const ALWAYS_ANSWERED = new Set(['/healthz'])

export async function installEdge (app: FastifyInstance, options: ResolvedOptions): Promise<void> {
  // First: a request for another host, or from another site's page, gets no further (not even CORS).
  installRequestGuard(app, options)

  if (options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: options.corsOrigins.includes('*') ? '*' : options.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'content-length', 'if-none-match', 'range', 'if-range', 'accept', 'prefer'],
      exposedHeaders: EXPOSED_HEADERS,
      // Tokens travel in the Authorization header, never in cookies.
      credentials: false,
      maxAge: 600,
    })
  }

  {
    // The first sample window after start-up measures the start-up itself (compiling schemas, loading
    // sharp): the loop was busy, but not with requests. Shed load only once a window of serving has passed.
    let serving = false
    app.addHook('onReady', async () => {
      setTimeout(() => { serving = true }, options.pressureSampleMs * 2).unref()
    })
    // maxEventLoopDelay 0 turns the check off; /ready then always answers 200.
    await app.register(underPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      sampleInterval: options.pressureSampleMs,
      exposeStatusRoute: {
        url: '/ready',
        routeOpts: { config: { access: 'public' } },
        routeSchemaOpts: { summary: 'Readiness: 503 while the event loop is overloaded', tags: ['operations'] },
      },
      pressureHandler: (request, reply, type, value) => {
        if (!serving || ALWAYS_ANSWERED.has(request.routeOptions.url ?? '')) return
        const what = `${String(type)} at ${typeof value === 'number' ? Math.round(value) : String(value)}`
        void reply.code(503).header('retry-after', '1').send(pxpError('PXP_ERR_OVERLOADED', what).toJSON())
      },
    })
  }

  installHttpAuth(app, options.tokens)

  // An upgrade refused with an HTTP answer (401, 429, 404) is on a socket Node's HTTP server no longer
  // manages: end it ourselves, or it stays open until the client goes and holds up shutdown.
  app.addHook('onResponse', async (request) => {
    if (request.headers.upgrade !== undefined) request.raw.socket?.end()
  })
}
