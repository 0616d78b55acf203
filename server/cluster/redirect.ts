/**
 * Redirects for clients that can follow them: a read (`GET`/`HEAD`) of an image another node owns, asked
 * with `?redirect=1` or `Prefer: redirect`, gets `307` to the owner's URL instead of being streamed through
 * this node; the client then downloads at direct speed.
 *
 * Only when the client's token opens the same images there: the owner's signed registration names a
 * digest of its token configuration (registration.ts authDigest), and this node redirects only when that
 * digest equals its own; otherwise (another configuration, an owner from before digests, a cluster with
 * client tokens but no cluster token) the request is forwarded as usual. The Location is built like a
 * forwarded request's target: the owner's advertised origin (a live peer's, from its signed registration),
 * the client's path, and its query without the redirect parameter. The client never chooses the host.
 *
 * The redirect parameter is accepted on every route (and then ignored when the image is here, or on a
 * single node), so a client can ask for a redirect without knowing where the image lives.
 */
import type { preValidationHookHandler } from 'fastify'
import { PREFER_REDIRECT, prefers } from '../../protocol/http-headers.js'
import type { ImageStore } from '../store/image-store.js'
import { FORWARDED_HEADER } from './keys.js'
import type { ClusterNode } from './node.js'
import { ownerTarget, REDIRECT_PARAM, withoutRedirectParam } from './target.js'

/** The `?redirect=` values that ask for one (anything else, e.g. `0`, does not). */
const YES = new Set(['1', 'true'])

/** The owner's URL for a redirected request: its advertised origin, the client's path and query (minus the redirect parameter). */
export function redirectLocation (ownerUrl: string, pathAndQuery: string): string {
  return ownerTarget(ownerUrl, withoutRedirectParam(pathAndQuery)).href
}

/**
 * A preValidation hook (ids are checked before it, the query schema after it): takes the redirect parameter
 * out of the query (so no route's schema refuses it), and answers 307 when the client asked for a redirect,
 * the image is another live node's, and that node takes this node's tokens. `cluster` null: a single node,
 * which only strips the parameter.
 */
export function redirectToOwner (cluster: ClusterNode | null, store: ImageStore): preValidationHookHandler {
  // Callback style: every request passes through here, and all but the redirected ones leave at once,
  // without a promise or a microtask turn.
  return function redirectHook (request, reply, done) {
    const query = request.query as Record<string, unknown> | undefined
    const param = query?.[REDIRECT_PARAM]
    if (param !== undefined) delete query![REDIRECT_PARAM]
    // (A repeated parameter is a list: any yes among them asks.)
    const asked = (param !== undefined && (Array.isArray(param) ? param : [param]).some((v) => typeof v === 'string' && YES.has(v))) ||
      prefers(request.headers.prefer, PREFER_REDIRECT)
    const id = (request.params as { id?: unknown } | undefined)?.id
    if (!asked || cluster === null || (request.method !== 'GET' && request.method !== 'HEAD') ||
        typeof id !== 'string' || store.has(id) || request.headers[FORWARDED_HEADER] !== undefined) {
      done()
      return
    }
    cluster.locate(id).then((entry) => {
      let location: string | null = null
      try {
        // A view the token may not see (its base is outside the token's ids) is refused later, not redirected.
        if (entry !== null && cluster.mayRedirectTo(entry) && request.principal.maySee(entry.descriptor)) {
          location = redirectLocation(entry.url, request.raw.url ?? '')
        }
      } catch (err) {
        done(err as Error)
        return
      }
      if (location === null || entry === null) {
        done()
        return
      }
      void reply.code(307)
        .header('location', location)
        .header('x-pixelport-node', entry.node)
        // The answer depends on this header and on where the image lives now: never cached.
        .header('vary', 'Prefer')
        .header('cache-control', 'no-store')
      if (prefers(request.headers.prefer, PREFER_REDIRECT)) void reply.header('preference-applied', 'redirect')
      void reply.send()
    }, (err: Error) => { done(err) })
  }
}
