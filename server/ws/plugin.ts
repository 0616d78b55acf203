/**
 * The `/ws` endpoint: @fastify/websocket configured for the protocol, one Connection per socket, store
 * events fanned out to every connection through one listener per event type, and a shutdown that closes
 * every connection with 1001 (dropping the ones that do not answer).
 */
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { WebSocket, WebSocketServer } from 'ws'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { ERRORS, pxpError } from '../../protocol/errors.js'
import type { EventType, ServerLimits } from '../../protocol/messages.js'
import type { ServerContext } from '../context.js'
import { Connection, type EndpointShared } from './connection.js'
import { resolveLimits, type ConnectionLimits } from './limits.js'
import { uploadsOf } from '../uploads/registry.js'
import { TokenConnections } from './token-connections.js'
import { MessageValidator } from './validate.js'

export interface WebSocketEndpointOptions extends ServerContext {
  /** Per-connection limits; defaults in limits.ts. */
  limits?: Partial<ConnectionLimits>
  /** URL path of the endpoint. Default `/ws`. */
  path?: string
}

/** What the endpoint shows of itself, as `app.pixelportWebSocket`. */
export interface WebSocketEndpointInfo {
  readonly limits: ServerLimits
  /** Open connections. */
  readonly connections: number
  /** The server side of every open connection (for diagnostics: bufferedAmount, readyState). */
  sockets (): WebSocket[]
  /** Bytes of the server's staging budget held by this endpoint's uploads (`server.uploads` has every transport's). */
  readonly stagingBytes: number
  /** The `ws` server (emits 'connection' for each new socket). */
  readonly server: WebSocketServer
}

declare module 'fastify' {
  interface FastifyInstance {
    pixelportWebSocket: WebSocketEndpointInfo
  }
}

/** How long shutdown waits for clients to answer the close before dropping them. */
const SHUTDOWN_GRACE_MS = 500

const endpoint: FastifyPluginAsync<WebSocketEndpointOptions> = async (app, options) => {
  const ctx: ServerContext = { store: options.store, snapshots: options.snapshots, options: options.options, metrics: options.metrics, cluster: options.cluster }
  const limits = resolveLimits(ctx.options, ctx.store.limits.maxImageBytes, options.limits)
  const connections = new Set<Connection>()
  const tokenConnections = new TokenConnections(ctx.options.maxConnectionsPerToken)
  const shared: EndpointShared = {
    ctx,
    limits,
    validator: new MessageValidator(),
    // One staging budget for every upload of the server, HTTP's included.
    uploads: uploadsOf(ctx),
    log: (err, what) => app.log.error({ err }, what),
    tokenConnections,
  }

  let wss: WebSocketServer | null = null
  app.decorate('pixelportWebSocket', {
    limits,
    get connections () { return connections.size },
    sockets: () => [...connections].map((c) => c.socket),
    get stagingBytes () { return shared.uploads.bytesOf('ws') },
    get server () { return wss! },
  })

  // One listener per event type for the whole endpoint, however many connections and subscriptions.
  const stopFanOut = ctx.store.onChange((type, descriptor) => {
    for (const c of connections) c.offer(type, descriptor)
  })
  // Other nodes' image events, for cluster-scope subscriptions (in stream order).
  const remote = (type: EventType, descriptor: ImageDescriptor): void => {
    for (const c of connections) c.offerRemote(type, descriptor)
  }
  ctx.cluster?.remoteEvents.on('event', remote)

  // A child context keeps @fastify/websocket's hooks off the HTTP routes.
  await app.register(async (inner: FastifyInstance) => {
    await inner.register(websocket, {
      options: {
        maxPayload: limits.maxMessageBytes,
        // Compression would copy every chunk and defeat the zero-copy frame path (see outbound.ts).
        perMessageDeflate: false,
      },
      // ws closes the connection itself (e.g. 1009 for an oversized message); only note the error.
      errorHandler: (err, socket) => {
        app.log.debug({ err }, 'WebSocket error')
        if (socket.readyState === socket.CONNECTING) socket.terminate()
      },
      preClose: async () => {
        stopFanOut()
        ctx.cluster?.remoteEvents.off('event', remote)
        await closeAll(connections)
        await new Promise<void>((resolve) => inner.websocketServer.close(() => resolve()))
      },
    })

    wss = inner.websocketServer
    // Connections per client address, refused at the upgrade (429) before any memory is spent on them.
    const perClient = new Map<string, number>()
    const maxPerClient = ctx.options.maxConnectionsPerClient
    inner.get(options.path ?? '/ws', {
      websocket: true,
      // The upgrade needs no token: a client that sent none authenticates with its first `hello`.
      config: { access: 'public' },
      preValidation: async (request, reply) => {
        const err = (perClient.get(request.ip) ?? 0) >= maxPerClient
          ? pxpError('PXP_ERR_TOO_MANY_CONNECTIONS', maxPerClient, 'client address')
          : tokenConnections.full(request.principal)
        if (err !== null) return await reply.code(ERRORS[err.code].status).send(err.toJSON())
      },
    }, (socket, request) => {
      const ip = request.ip
      perClient.set(ip, (perClient.get(ip) ?? 0) + 1)
      const connection = new Connection(socket, shared, request.principal)
      connections.add(connection)
      // Checked at the upgrade; another upgrade of the same token may have come in between.
      const refused = tokenConnections.claim(connection, request.principal)
      if (refused !== null) connection.fail(refused)
      ctx.metrics?.addConnections('ws', 1)
      socket.once('close', () => {
        const left = (perClient.get(ip) ?? 1) - 1
        if (left === 0) perClient.delete(ip)
        else perClient.set(ip, left)
        connections.delete(connection)
        tokenConnections.release(connection)
        ctx.metrics?.addConnections('ws', -1)
      })
    })
  })
}

// As fastify-plugin does: the `pixelportWebSocket` decoration lands on the instance that registers us.
;(endpoint as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true

/** The `/ws` endpoint as a fastify plugin; register it with the ServerContext. */
export const websocketEndpoint = endpoint

async function closeAll (connections: Set<Connection>): Promise<void> {
  const closing = [...connections].map((c) => new Promise<void>((resolve) => {
    c.out.onClose(resolve)
    c.goingAway()
  }))
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, SHUTDOWN_GRACE_MS) })
  await Promise.race([Promise.all(closing), grace])
  clearTimeout(timer)
  for (const c of connections) c.out.terminate()
}
