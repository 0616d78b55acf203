/**
 * The first onRequest hook, before CORS, load shedding and authentication: requests that are not for this
 * server, or that a browser sent on another site's behalf, go no further.
 *
 * - Request target: only origin form (`/path?query`). An absolute-form target (`GET http://host/path`)
 *   reaches fastify with the whole URL in `request.url`, and code that resolves it against a base URL
 *   (`new URL(request.url, base)`) would go to the host in it; `//host/path` does the same. Refused with
 *   400 PXP_ERR_BAD_TARGET on every route.
 * - Host (DNS rebinding): a page on evil.example whose name the attacker re-points at 127.0.0.1 is
 *   same-origin with this server for the browser, but still sends `Host: evil.example`. With a loopback
 *   bind only loopback names and `allowedHosts` are served; anything else is 421 PXP_ERR_BAD_HOST, and a
 *   missing Host is 400 PXP_ERR_BAD_REQUEST.
 * - Origin (cross-site requests): browsers attach `Origin` to WebSocket upgrades and to POST/PUT/DELETE,
 *   and a page can open a WebSocket to any server, CORS or not. Those requests are served only without an
 *   Origin (non-browser clients), from the same origin, or from an origin allowed with `corsOrigins`;
 *   otherwise 403 PXP_ERR_BAD_ORIGIN. (Cross-site GETs need nothing: without CORS the page cannot read
 *   the answer, and no GET changes anything.)
 * - `GET /ws` without an upgrade: 426 PXP_ERR_UPGRADE_REQUIRED, instead of @fastify/websocket's empty 404.
 * - `CONNECT host:port` (authority form, a proxy's method): 400 PXP_ERR_BAD_TARGET.
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { isLoopback, type ResolvedOptions } from '../options.js'
import { rawErrorResponse } from './client-errors.js'

/** Methods a cross-site page can send that change state (GET and HEAD change nothing here). */
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'DELETE', 'PATCH'])
/** The WebSocket endpoint's path (server/ws/plugin.ts). */
const WEBSOCKET_PATH = '/ws'

/** A Host header split into name and port; null when it is not a host name or address at all. */
export interface HostValue {
  /** Lower case; IPv6 addresses with their brackets. */
  name: string
  port: number | null
}

export function parseHost (value: string): HostValue | null {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/.exec(value.trim().toLowerCase())
  if (m === null) return null
  const port = m[2] === undefined ? null : Number(m[2])
  if (port !== null && port > 65535) return null
  return { name: m[1], port }
}

/**
 * Which Host values this server answers: null for any (non-loopback bind without `allowedHosts`), else a
 * predicate. Loopback names are served at any port, `allowedHosts` entries at any port or the one they name;
 * the bind address and the cluster's advertised host are added, since peers and direct clients use them.
 */
export function hostPolicy (options: ResolvedOptions): ((host: HostValue) => boolean) | null {
  if (!isLoopback(options.host) && options.allowedHosts.length === 0) return null
  const names = new Set<string>()
  const exact = new Set<string>()
  const allow = (entry: string): void => {
    const h = parseHost(entry)
    if (h === null) return
    if (h.port === null) names.add(h.name)
    else exact.add(`${h.name}:${h.port}`)
  }
  for (const entry of options.allowedHosts) allow(entry)
  if (!['0.0.0.0', '::', '[::]'].includes(options.host)) allow(options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host)
  if (options.cluster?.advertise != null) allow(new URL(options.cluster.advertise).host)
  return (host) => isLoopback(host.name) || names.has(host.name) || exact.has(`${host.name}:${host.port ?? ''}`)
}

/**
 * Whether a browser on `origin` may send this request to the server it reached as `host`: same scheme-less
 * host and port (http or https, the latter for a TLS proxy in front), or listed in `corsOrigins` (`*`: any).
 */
export function originAllowed (origin: string, host: HostValue | null, corsOrigins: readonly string[]): boolean {
  if (corsOrigins.includes('*') || corsOrigins.includes(origin)) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false // "null" (sandboxed frames, file: pages) and anything else that is not an origin
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || host === null) return false
  const defaultPort = url.protocol === 'https:' ? 443 : 80
  const originPort = url.port === '' ? defaultPort : Number(url.port)
  return url.hostname.toLowerCase() === host.name && (host.port ?? defaultPort) === originPort
}

function refuse (reply: FastifyReply, err: PixelportError): FastifyReply {
  // The connection carried a request that was not for us: nothing more on it is wanted either.
  return reply.code(err.status).header('connection', 'close').send(err.toJSON())
}

/** Install the hook; call before any other hook or plugin so it runs first. */
export function installRequestGuard (app: FastifyInstance, options: ResolvedOptions): void {
  const hostAllowed = hostPolicy(options)
  const corsOrigins = options.corsOrigins
  // CONNECT (authority-form target) never reaches fastify; without a listener Node drops the socket silently.
  app.server.on('connect', (request: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy())
    socket.end(rawErrorResponse(pxpError('PXP_ERR_BAD_TARGET', (request.url ?? '').slice(0, 200))), () => socket.destroy())
  })
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const target = request.raw.url ?? ''
    if (!target.startsWith('/') || target.startsWith('//')) {
      return refuse(reply, pxpError('PXP_ERR_BAD_TARGET', target.slice(0, 200)))
    }

    const hostHeader = request.headers.host
    if (hostHeader === undefined || hostHeader === '') {
      return refuse(reply, pxpError('PXP_ERR_BAD_REQUEST', 'the Host header is missing'))
    }
    const host = parseHost(hostHeader)
    if (hostAllowed !== null && (host === null || !hostAllowed(host))) {
      return refuse(reply, pxpError('PXP_ERR_BAD_HOST', hostHeader.slice(0, 200), 'a server on a loopback address answers only to localhost, 127.0.0.1 and [::1], and to names given with --allowed-host'))
    }

    // Set by Node's parser when it handed the request to the 'upgrade' event (Connection: upgrade).
    const upgrade = (request.raw as IncomingMessage & { upgrade?: boolean }).upgrade === true
    // Sec-WebSocket-Origin: what version-8 WebSocket clients (early browsers) sent instead; ws accepts them.
    const origin = request.headers.origin ?? (request.headers['sec-websocket-origin'] as string | undefined)
    if (origin !== undefined && (upgrade || UNSAFE_METHODS.has(request.method)) && !originAllowed(origin, host, corsOrigins)) {
      return refuse(reply, pxpError('PXP_ERR_BAD_ORIGIN', origin.slice(0, 200), `${upgrade ? 'WebSocket connections' : request.method + ' requests'} are accepted from the same origin and from origins allowed with --cors`))
    }

    if (!upgrade && request.routeOptions.url === WEBSOCKET_PATH) {
      return reply.code(426).header('upgrade', 'websocket').send(pxpError('PXP_ERR_UPGRADE_REQUIRED', WEBSOCKET_PATH).toJSON())
    }
  })
}
