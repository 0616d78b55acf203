/**
 * Authentication and authorisation of every HTTP request (including WebSocket upgrades), in one onRequest
 * hook on the root instance, so no route can be added without it.
 *
 * A route says what it needs with `config: { access }`: `public` (the viewer page, health, docs, the
 * WebSocket upgrade), `read`,
 * `write` or `admin`. Without it, GET/HEAD need `read` and everything else `write`. A route with an `:id`
 * parameter is also checked against the token's id limits here, before any handler looks the id up,
 * so a 403 never depends on whether the image exists.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { assertImageAccess, type ViewBases } from './image-access.js'
import { bearerToken, Principal, type Scope, type TokenRegistry } from './tokens.js'

export type Access = Scope | 'public'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a caller needs for this route (see server/auth/http-auth.ts). */
    access?: Access
  }
  interface FastifyRequest {
    /** Who is asking: Principal.unrestricted when no tokens are configured. */
    principal: Principal
  }
}

/** The principal of a request with a bearer token, PXP_ERR_UNAUTHORIZED without a valid one. */
export function authenticateHeader (registry: TokenRegistry, header: string | undefined): Principal | PixelportError {
  const token = bearerToken(header)
  if (token === undefined) return pxpError('PXP_ERR_UNAUTHORIZED')
  const principal = token === null ? null : registry.authenticate(token)
  return principal ?? pxpError('PXP_ERR_UNAUTHORIZED')
}

function requiredAccess (request: FastifyRequest): Access {
  const configured = request.routeOptions.config?.access
  if (configured !== undefined) return configured
  // CORS preflights carry no credentials by design; the API documentation names no image.
  if (request.method === 'OPTIONS' || request.routeOptions.url?.startsWith('/docs') === true) return 'public'
  return request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write'
}

/**
 * The view rule (server/auth/image-access.ts) for the routes of the HTTP API: a route naming a view needs
 * its scope on the view's base too. Added by the API plugin, which knows the store; it runs after the root
 * hook above, before any body is read. DELETE of a view touches no pixel and needs the view's id alone.
 */
export function viewAccessHook (store: ViewBases): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    const access = requiredAccess(request)
    const id = (request.params as { id?: unknown } | undefined)?.id
    if (access === 'public' || typeof id !== 'string' || request.method === 'DELETE') return
    try {
      assertImageAccess(request.principal, access, id, store)
    } catch (err) {
      return deny(reply, err as PixelportError)
    }
  }
}

/**
 * The view rule for an image another node owns (cluster): the owner trusts this node's token, so this node
 * checks the base from the owner's descriptor in the catalog before the request is forwarded. Tokens for
 * every id cannot fail it and skip the catalog lookup.
 */
export function remoteViewAccessHook (locate: (id: string) => Promise<{ descriptor: { id: string, base?: string } } | null>, store: ViewBases & { has: (id: string) => boolean }): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    const id = (request.params as { id?: unknown } | undefined)?.id
    if (typeof id !== 'string' || request.principal.everyId || request.method === 'DELETE' || store.has(id)) return
    if (requiredAccess(request) === 'public') return
    const entry = await locate(id)
    if (entry !== null && !request.principal.maySee(entry.descriptor)) {
      return deny(reply, pxpError('PXP_ERR_FORBIDDEN', `${id} is a view of an image outside this token's ids`))
    }
  }
}

function deny (reply: FastifyReply, err: PixelportError): FastifyReply {
  const status = err.code === 'PXP_ERR_UNAUTHORIZED' ? 401 : 403
  if (status === 401) void reply.header('www-authenticate', 'Bearer realm="pixelport"')
  return reply.code(status).send(err.toJSON())
}

/**
 * Install the hook. The WebSocket endpoint is `read` at the upgrade: a client without an Authorization
 * header is let through and must authenticate with its first `hello` (browsers cannot set headers).
 */
export function installHttpAuth (app: FastifyInstance, registry: TokenRegistry): void {
  app.decorateRequest('principal', null as unknown as Principal)
  app.addHook('onRequest', async (request, reply) => {
    if (!registry.enabled) {
      request.principal = Principal.unrestricted
      return
    }
    const access = requiredAccess(request)
    const header = request.headers.authorization
    // Public routes need no token, but a token presented anywhere must be valid: a wrong one is never ignored.
    if (access === 'public' && header === undefined) {
      request.principal = Principal.none
      return
    }
    const principal = authenticateHeader(registry, header)
    if (!(principal instanceof Principal)) return deny(reply, principal)
    request.principal = principal
    if (access === 'public') return
    try {
      const id = (request.params as { id?: unknown } | undefined)?.id
      principal.assert(access, typeof id === 'string' ? id : undefined)
    } catch (err) {
      return deny(reply, err as PixelportError)
    }
  })
}
