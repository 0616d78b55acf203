/**
 * Requests for an image another node owns, forwarded to that node and streamed back (not redirected).
 *
 * Why a proxy: a client talks to one URL. A 307 would hand it the owner's advertised address, which it
 * may not reach (another network, a container name) and which its token may not open; the proxy keeps
 * the one-URL contract and costs one loopback-or-LAN hop. Bytes are streamed through with backpressure in
 * both directions (the owner's response is piped into the reply, an upload into the owner's request), so
 * the node in the middle holds no more than a few socket buffers whatever the image size.
 *
 * The owner checks the node's own token (`peerHeaders`); the client's request was already authorised
 * here. That token is the cluster's key, so it goes only to a live node at the URL its signed registration
 * advertised, and only the path and query of the client's request travel: the client cannot choose the
 * host (an absolute-form target is refused at the edge, and refused here again). A forwarded request carries FORWARDED_HEADER and is never forwarded again, so two nodes whose
 * catalogs disagree for a moment cannot bounce a request between them.
 */
import http from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { ImageStore } from '../store/image-store.js'
import type { RemoteEntry } from './directory.js'
import { FORWARDED_HEADER } from './keys.js'
import type { ClusterNode } from './node.js'

/** Request headers that mean the same thing at the owner. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'range', 'if-range', 'if-none-match', 'content-type', 'content-length'] as const
/** Response headers that do not travel (hop-by-hop, or set again by this server). */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'server'])
const UPSTREAM_BUFFER_BYTES = 1024 * 1024
/** Waiting for the owner to start answering; a stalled body is the client's business after that. */
const CONNECT_TIMEOUT_MS = 10_000

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

/**
 * The URL at the owner for `pathAndQuery`: the owner's advertised origin, and the client's path and query
 * only. Anything that is not a plain path (`http://elsewhere/…`, `//elsewhere/…`, `*`) is refused, so no
 * request target can move the request, or the token with it, to another host.
 */
export function ownerTarget (ownerUrl: string, pathAndQuery: string): URL {
  const origin = new URL(ownerUrl).origin
  if (!pathAndQuery.startsWith('/') || pathAndQuery.startsWith('//')) throw pxpError('PXP_ERR_BAD_TARGET', pathAndQuery.slice(0, 200))
  const target = new URL(origin + pathAndQuery)
  if (target.origin !== origin) throw pxpError('PXP_ERR_BAD_TARGET', pathAndQuery.slice(0, 200))
  return target
}

/** Send `request` to the owner named by `entry` and stream its answer back as this reply. */
export async function forward (request: FastifyRequest, reply: FastifyReply, entry: RemoteEntry, cluster: ClusterNode): Promise<void> {
  const target = ownerTarget(entry.url, request.raw.url ?? '')
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

  // A 1 MiB read buffer: fewer pause/resume turns per frame than the default 16 KiB, and still a small,
  // fixed bound on what one forwarded download holds here.
  // (`highWaterMark` is honoured by Node 20's http.request; @types/node does not list it.)
  const upstreamOptions = { method: request.method, headers, agent: cluster.agent, highWaterMark: UPSTREAM_BUFFER_BYTES } as http.RequestOptions
  const upstream = http.request(target, upstreamOptions)
  // The client went away: stop the owner's transfer too (no half-read responses kept alive).
  const onClientClose = (): void => { if (!reply.raw.writableFinished) upstream.destroy() }
  reply.raw.once('close', onClientClose)
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const timer = setTimeout(() => upstream.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
    upstream.once('response', (res) => { clearTimeout(timer); resolve(res) })
    upstream.once('error', (err) => { clearTimeout(timer); reject(pxpError('PXP_ERR_PEER_UNREACHABLE', entry.node, entry.url, entry.id, err.message)) })
    if (body === null) upstream.end()
    else if (Buffer.isBuffer(body)) upstream.end(body)
    else body.pipe(upstream)
  })
  reply.code(response.statusCode ?? 502)
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) void reply.header(name, value)
  }
  void reply.header('x-pixelport-node', entry.node)
  // A descriptor (GET /images/:id as JSON) gets the owner's name and URL, as in cluster listings.
  const type = String(response.headers['content-type'] ?? '')
  if (request.method === 'GET' && response.statusCode === 200 && type.startsWith('application/json') && !request.url.split('?')[0].endsWith('/data')) {
    const chunks: Buffer[] = []
    for await (const chunk of response) chunks.push(chunk as Buffer)
    const descriptor = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
    reply.removeHeader('content-length')
    void reply.send({ ...descriptor, node: entry.node, url: entry.url })
    return
  }
  // Piped by fastify with backpressure; a failure of the owner mid-body ends this response too.
  void reply.send(response)
}
