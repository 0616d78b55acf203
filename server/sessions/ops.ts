/**
 * The op table of every session: one handler per request of protocol/session-messages.ts. Which of them a
 * transport serves is its own choice (WORKER_OPS, ATTACH_OPS); the handlers do not know the transport.
 */
import { pxpError } from '../../protocol/errors.js'
import type { SessionOp, SessionRequest } from '../../protocol/session-messages.js'
import { begin, cancel, closeHandle, commit, leased, loan, open, publish } from './on-behalf.js'
import type { Session } from './session.js'

type Handler<K extends SessionOp> = (session: Session, msg: Extract<SessionRequest, { op: K }>) => unknown

const OPS: { [K in SessionOp]: Handler<K> } = {
  hello: (s, msg) => s.hello(msg),
  block: (s, msg) => {
    const buffer = s.store.blockBuffer(msg.block)
    if (buffer === undefined) throw pxpError('PXP_ERR_NOT_FOUND', `block ${msg.block}`)
    return buffer
  },
  // Only a describe or open of an image that must be fetched first (a cluster replica) is answered later.
  describe: (s, msg) => s.describe(msg.id),
  list: (s) => s.store.list(),
  create: (s, msg) => s.store.create(msg.request),
  view: (s, msg) => s.store.createView(msg.id, msg.view),
  delete: (s, msg) => {
    s.store.delete(msg.id)
    return null
  },
  watch: (s, msg) => {
    s.watch(msg.on === true)
    return null
  },
  open: (s, msg) => s.whenLocal(msg.id, () => open(s, msg.id)),
  close: (s, msg) => {
    closeHandle(s, leased(s, msg.slot))
    return null
  },
  begin: async (s, msg) => await begin(s, leased(s, msg.slot), msg.timeoutMs),
  commit: (s, msg) => commit(s, leased(s, msg.slot)),
  loan: async (s, msg) => await loan(s, leased(s, msg.slot), msg.timeoutMs),
  publish: async (s, msg) => await publish(s, leased(s, msg.slot), msg.frame, msg.timeoutMs),
  cancel: (s, msg) => {
    cancel(s, leased(s, msg.slot), msg.frame)
    return null
  },
}

/**
 * Run `msg` for `session`: a result, a promise of one, or a thrown PXP error. The session has checked that
 * its transport serves `msg.op` (so it is a key of the table, not e.g. '__proto__').
 */
export function runOp (session: Session, msg: SessionRequest): unknown {
  return (OPS[msg.op] as Handler<SessionOp>)(session, msg as never)
}
