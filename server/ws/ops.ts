/**
 * The op table: one handler per client op. Each checks what the token allows, does the work and answers
 * with the request's `req`; a handler that throws is answered with that error (Connection.dispatch).
 * Streams (`get`), uploads (`put`/`chunk`/`end`) and subscriptions keep their state on the connection.
 */
import type { ClientMessage, ClientOp, CreateMessage } from '../../protocol/wire/client-messages.js'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { CreateRequest } from '../../protocol/spec.js'
import { assertImageAccess, evictableBy } from '../auth/image-access.js'
import { describeRemote, notOwner } from '../cluster/remote-ops.js'
import { clusterPage, localPage } from '../listing/pages.js'
import type { Connection } from './connection.js'
import { openFrame } from './frames.js'
import { sendFrame } from './streams.js'
import { Subscription } from './subscription.js'

/** Room left in a `list` reply for everything but its descriptors (req, next, cluster fields). */
const LIST_ENVELOPE_BYTES = 4096

type Handler<Op extends ClientOp> = (conn: Connection, msg: Extract<ClientMessage, { op: Op }>) => void

export const OPS: { readonly [Op in ClientOp]: Handler<Op> } = {
  hello: (conn, msg) => conn.session.hello(conn, msg),

  list (conn, msg) {
    const principal = conn.principal
    principal.assert('read')
    const page = { limit: msg.limit, cursor: msg.cursor }
    // A page stays within about one chunk's size, so no reply is larger than the largest chunk message.
    const budget = Math.max(0, conn.chunkSize - LIST_ENVELOPE_BYTES)
    const { cluster, store } = conn.ctx
    if (msg.scope === 'cluster' && cluster != null) {
      conn.track(msg.req, cluster.list().then((l) => conn.send({ op: 'images', req: msg.req, ...l, ...clusterPage(l.images, principal, page, budget) })))
      return
    }
    conn.send({ op: 'images', req: msg.req, ...localPage(store, principal, page, budget) })
  },

  describe (conn, msg) {
    const { cluster, store } = conn.ctx
    const principal = conn.principal
    assertImageAccess(principal, 'read', msg.id, store)
    if (cluster != null && !store.has(msg.id)) {
      // Another node's view: the scope on its base is checked from the owner's descriptor.
      conn.track(msg.req, describeRemote(cluster, msg.id).then((d) => {
        if (!principal.maySee(d)) throw pxpError('PXP_ERR_FORBIDDEN', `${msg.id} is a view of an image outside this token's ids`)
        conn.send({ op: 'descriptor', req: msg.req, descriptor: d })
      }))
      return
    }
    conn.send({ op: 'descriptor', req: msg.req, descriptor: store.describe(msg.id) })
  },

  create (conn, msg) {
    conn.principal.assertMayCreate(msg.id)
    conn.send({ op: 'descriptor', req: msg.req, descriptor: conn.ctx.store.create(createRequest(msg), undefined, evictableBy(conn.principal)) })
  },

  delete (conn, msg) {
    conn.principal.assert('write', msg.id)
    conn.ctx.store.delete(msg.id)
    conn.send({ op: 'deleted', req: msg.req, id: msg.id })
  },

  get (conn, msg) {
    const { ctx, limits, lane } = conn
    const store = ctx.store
    assertImageAccess(conn.principal, 'read', msg.id, store)
    throwIf(notOwner(ctx.cluster, (id) => store.has(id), msg.id, 'WebSocket get streams local images only; GET /images/{id}/data on any node streams it from the owner'))
    if (lane.gets >= limits.maxStreams) throw pxpError('PXP_ERR_TOO_MANY_STREAMS', limits.maxStreams)
    // Fail fast on an unknown image rather than after the gets queued before it.
    store.describe(msg.id)
    lane.enqueue(msg.req, async (stream, abort) => {
      const source = await openFrame(ctx, msg.id, msg.generation, msg.region)
      if (abort.reason !== null || !conn.out.open) {
        source.release()
        throw abort.reason ?? pxpError('PXP_ERR_CLOSED', 'connection')
      }
      // sendFrame reports its own failures (with the stream number) and releases the source.
      await sendFrame(conn.out, stream, { req: msg.req }, source, conn.chunkSize, abort, ctx.metrics)
    }).catch((err: unknown) => conn.replyError(msg.req, err))
  },

  put (conn, msg) {
    const store = conn.ctx.store
    const principal = conn.principal
    principal.assertMayCreate(msg.id)
    // Overwriting a view writes its base's pixels.
    if (msg.id !== undefined) assertImageAccess(principal, 'write', msg.id, store)
    const refused = notOwner(conn.ctx.cluster, (id) => store.has(id), msg.id, 'write to the owner, or PUT /images/{id}/data on any node (forwarded)')
    if (refused !== null) {
      // Refused like any other put header: the chunks that follow are dropped quietly.
      conn.uploads.refused(msg)
      throw refused
    }
    conn.uploads.put(msg)
  },

  chunk: (conn, msg) => conn.uploads.chunk(msg),

  end: (conn, msg) => conn.uploads.end(msg.req),

  subscribe (conn, msg) {
    const { limits, subscriptions } = conn
    const principal = conn.principal
    principal.assert('read')
    for (const id of msg.ids ?? []) assertImageAccess(principal, 'read', id, conn.ctx.store)
    const queue = msg.queue ?? limits.defaultQueue
    if (queue > limits.maxQueue) throw pxpError('PXP_ERR_VALIDATION', `subscribe: queue ${queue} exceeds this server's maxQueue of ${limits.maxQueue}`)
    if (subscriptions.size >= limits.maxSubscriptions) throw pxpError('PXP_ERR_TOO_MANY_SUBSCRIPTIONS', limits.maxSubscriptions)
    const sub = conn.nextSubscription()
    subscriptions.set(sub, new Subscription(sub, conn, {
      ids: msg.ids === undefined ? null : new Set(msg.ids),
      policy: msg.policy ?? 'latest',
      data: msg.data ?? false,
      queue,
      scope: msg.scope ?? 'local',
    }))
    conn.ctx.metrics?.addSubscriptions(1)
    conn.send({ op: 'subscribed', req: msg.req, sub })
  },

  unsubscribe (conn, msg) {
    const s = conn.subscriptions.get(msg.sub)
    if (s === undefined) throw pxpError('PXP_ERR_BAD_REQUEST', `no subscription ${msg.sub} on this connection`)
    s.close()
    conn.subscriptions.delete(msg.sub)
    conn.ctx.metrics?.addSubscriptions(-1)
    conn.send({ op: 'unsubscribed', req: msg.req, sub: msg.sub })
  },

  cancel (conn, msg) {
    const reason = pxpError('PXP_ERR_ABORTED', `request ${JSON.stringify(msg.req)} was cancelled`)
    if (conn.lane.cancel(msg.req, reason)) return
    // Else an upload; with nothing in flight under this id, it finished before the cancel arrived: nothing to say.
    conn.uploads.cancel(msg.req, reason)
  },
}

/** Run the handler of `msg.op`. */
export function runOp (conn: Connection, msg: ClientMessage): void {
  (OPS[msg.op] as Handler<ClientOp>)(conn, msg as never)
}

function throwIf (err: PixelportError | null): void {
  if (err !== null) throw err
}

function createRequest (msg: CreateMessage): CreateRequest {
  const { op: _op, req: _req, ...fields } = msg
  return fields
}
