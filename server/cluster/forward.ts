/**
 * Requests for an image another node owns, forwarded to that node and streamed back.
 *
 * Why a proxy by default: a client talks to one URL. A 307 would hand it the owner's advertised address,
 * which it may not reach (another network, a container name) and which its token may not open; the proxy
 * keeps the one-URL contract and costs one loopback-or-LAN hop. A client that can follow a redirect asks for
 * one (redirect.ts) and then downloads at direct speed.
 *
 * The hop costs what a plain reverse proxy's does: requests go over keep-alive connections to the owner
 * (one undici Pool per peer, peer-pools.ts), and the owner's body is handed to the reply as undici's
 * Readable, chunks as they came off the socket (no re-buffering, no copy here). Backpressure runs both ways:
 * a slow client pauses the reply, the reply pauses that Readable, undici pauses the owner's socket; an upload
 * is streamed into the owner's request the same way. The node in the middle holds a few socket buffers
 * whatever the image size.
 *
 * The owner checks the node's own token (`peerHeaders`); the client's request was already authorised
 * here. That token is the cluster's key, so it goes only to a live node at the URL its signed registration
 * advertised, and only the path and query of the client's request travel: the client cannot choose the
 * host (an absolute-form target is refused at the edge, and refused here again). A forwarded request
 * carries FORWARDED_HEADER and is never forwarded again, so two nodes whose catalogs disagree for a moment
 * cannot bounce a request between them.
 */
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { Dispatcher } from 'undici'
import { pxpError } from '../../protocol/errors.js'
import { decodeDescriptorHeader, DESCRIPTOR_HEADER, encodeDescriptorHeader } from '../../protocol/http-headers.js'
import type { ImageStore } from '../store/image-store.js'
import type { RemoteEntry } from './directory.js'
import { FORWARDED_HEADER } from './keys.js'
import type { ClusterNode } from './node.js'
import { ownerTarget, withoutRedirectParam } from './target.js'

export { ownerTarget } from './target.js'

/** Request headers that mean the same thing at the owner. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'range', 'if-range', 'if-none-match', 'content-type', 'content-length'] as const
/** Response headers that do not travel (hop-by-hop, or set again by this server). */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'server'])
/**
 * What undici's body Readable holds before it pauses the owner's socket: more than its 64 KiB default, for
 * fewer pause/resume turns per frame, and still a small, fixed bound per forwarded download.
 */
const UPSTREAM_BUFFER_BYTES = 1024 * 1024

function isStream (body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function'
}

/**
 * The preHandler that forwards a per-image request (`:id` in the route) to the image's owner, when the
 * image is not here and a live peer owns it. Local ids always win; unknown ids fall through to the route,
 * which answers PXP_ERR_NOT_FOUND.
 */
export function forwardToOwner (cluster: ClusterNode, store: ImageStore): preHandlerAsyncHookHandler {
  return async function forwardHook (request, reply) {
    const id = (request.params as { id?: unknown } | undefined)?.id
    if (typeof id !== 'string' || store.has(id) || request.headers[FORWARDED_HEADER] !== undefined) return
    const entry = await cluster.locate(id)
    if (entry === null) return
    await forward(request, reply, entry, cluster)
    return reply
  }
}

/** Send `request` to the owner named by `entry` and stream its answer back as this reply. */
export async function forward (request: FastifyRequest, reply: FastifyReply, entry: RemoteEntry, cluster: ClusterNode): Promise<void> {
  // The owner answers as if no redirect had been asked for (it would serve its own image anyway).
  const target = ownerTarget(entry.url, withoutRedirectParam(request.raw.url ?? ''))
  if (!cluster.isLivePeer(entry)) {
    throw pxpError('PXP_ERR_PEER_UNREACHABLE', entry.node, entry.url, entry.id, 'not a live member of the cluster')
  }
  const headers: Record<string, string> = { ...cluster.peerHeaders(entry), [FORWARDED_HEADER]: cluster.nodeId }
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  let body: Readable | Buffer | null = null
  if (isStream(request.body)) body = request.body
  else if (request.body !== undefined && request.body !== null) {
    body = Buffer.from(JSON.stringify(request.body))
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(body.byteLength)
  }

  // The client went away: stop the owner's transfer too (no half-read responses kept alive).
  const abort = new AbortController()
  const onClientClose = (): void => { if (!reply.raw.writableFinished) abort.abort() }
  reply.raw.once('close', onClientClose)
  let response: Dispatcher.ResponseData
  try {
    // `headersTimeout` (peer-pools.ts) bounds the wait for the owner to start answering.
    response = await cluster.pools.for(entry.url).request({
      path: target.pathname + target.search,
      method: request.method as Dispatcher.HttpMethod,
      headers,
      body,
      signal: abort.signal,
      highWaterMark: UPSTREAM_BUFFER_BYTES,
    })
  } catch (err) {
    throw pxpError('PXP_ERR_PEER_UNREACHABLE', entry.node, entry.url, entry.id, (err as Error)?.message ?? String(err))
  }
  reply.code(response.statusCode)
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) void reply.header(name, value)
  }
  void reply.header('x-pixelport-node', entry.node)
  // The descriptor a download asked for (`Prefer: descriptor`) names the owner too, as a described one does.
  const carried = response.headers[DESCRIPTOR_HEADER]
  if (typeof carried === 'string') {
    const descriptor = decodeDescriptorHeader(carried)
    const named = descriptor === null ? null : encodeDescriptorHeader(Object.assign({}, descriptor, { node: entry.node, url: entry.url }))
    if (named === null) reply.removeHeader(DESCRIPTOR_HEADER).removeHeader('preference-applied')
    else void reply.header(DESCRIPTOR_HEADER, named)
  }
  // A descriptor (GET /images/:id as JSON) gets the owner's name and URL, as in cluster listings.
  const type = String(response.headers['content-type'] ?? '')
  if (request.method === 'GET' && response.statusCode === 200 && type.startsWith('application/json') && !request.url.split('?')[0].endsWith('/data')) {
    const descriptor = await response.body.json() as Record<string, unknown>
    reply.removeHeader('content-length')
    void reply.send({ ...descriptor, node: entry.node, url: entry.url })
    return
  }
  // Piped by fastify with backpressure; a failure of the owner mid-body ends this response too.
  void reply.send(response.body)
}
