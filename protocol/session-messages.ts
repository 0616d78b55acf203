/**
 * The session protocol: what a client that shares the server's memory (a worker thread over a MessagePort,
 * or a process on the same host over the attach socket) asks the server, and what it hears back. One
 * request union, one reply and one event shape for both transports; the server answers both with one
 * session core (server/sessions/).
 *
 * Only the slow paths use messages (connect, first mapping of a block, create, delete, line-based images);
 * opening, reading and writing an image whose memory is mapped go through shared memory alone. Clients
 * without atomic instructions (Python with numpy, over the attach socket) ask the server to take leases,
 * locks and loans for them (`open`, `begin`/`commit`, `loan`/`publish`) and touch only pixels themselves.
 *
 * Each transport serves the ops that make sense over it (./worker-messages.ts, ./attach-messages.ts):
 * `block` posts a SharedArrayBuffer, which only a MessagePort can carry; an attached process maps blocks by
 * segment name instead. Any other op is answered PXP_ERR_UNKNOWN_OP.
 */
import type { ChangeType, ImageDescriptor } from './descriptor.js'
import type { ErrorBody } from './errors.js'
import type { CreateRequest } from './spec.js'

/** Bumped on any incompatible change to the messages below (both transports speak the same version). */
export const SESSION_PROTOCOL_VERSION = 1

/** The first message of every session. */
export interface HelloRequest {
  op: 'hello'
  req: number
  protocol: number
  layoutVersion: number
}

/** Hello over the attach socket: the client proves it could map the table and says how it keeps claims. */
export interface AttachHelloRequest extends HelloRequest {
  pid: number
  /** HEADER.ATTACH_KEY of the table as two unsigned 32-bit words: proof the client could map it. */
  key: [number, number]
  /** Ask for a claims segment the client updates itself (Node); false: the server keeps claims for it. */
  claims: boolean
}

export type SessionRequest =
  | HelloRequest
  | AttachHelloRequest
  /** The SharedArrayBuffer of block `block` (worker threads only). */
  | { op: 'block', req: number, block: number }
  /** The descriptor of `id`; an image this node lacks may be made local first (a cluster replica). */
  | { op: 'describe', req: number, id: string }
  | { op: 'list', req: number }
  | { op: 'create', req: number, request: CreateRequest }
  /** A zero-copy view of a rectangle of `id`, with the view's own id and access if given. */
  | { op: 'view', req: number, id: string, view: { x: number, y: number, width: number, height: number, id?: string, readonly?: boolean } }
  | { op: 'delete', req: number, id: string }
  /** Send 'event' messages for every create, update and delete from now on (`false`: stop). Attach only: workers always get them. */
  | { op: 'watch', req: number, on: boolean }
  // Operations the server performs on the client's behalf, recorded in its claims (attach only):
  /** Take a lease on a live image; replies with its slot, epoch and descriptor (SessionOpened). */
  | { op: 'open', req: number, id: string }
  /** Drop one lease taken with 'open'. */
  | { op: 'close', req: number, slot: number }
  /** Take the write lock of a plain image and mark the write begun (SEQ odd). */
  | { op: 'begin', req: number, slot: number, timeoutMs?: number }
  /** Commit the write begun with 'begin' (new generation, SEQ even), unlock and wake every waiter. */
  | { op: 'commit', req: number, slot: number }
  /** Loan a frame buffer of a frame-buffered image (not the front, not pinned). */
  | { op: 'loan', req: number, slot: number, timeoutMs?: number }
  /** Publish a loaned frame buffer as the new front. */
  | { op: 'publish', req: number, slot: number, frame: number, timeoutMs?: number }
  /** Give a loaned frame buffer back unpublished. */
  | { op: 'cancel', req: number, slot: number, frame: number }

export type SessionOp = SessionRequest['op']

/** Fire-and-forget notices from a client. */
export type SessionNotice =
  /** Leases of a deleted slot reached 0 (the client dropped the last one): the server may reuse its memory. */
  { op: 'released', slot: number }

export type SessionToServer = SessionRequest | SessionNotice

/**
 * Reply to 'hello'. `Table` and `Claims` are how the transport hands over memory: SharedArrayBuffers over
 * a MessagePort, POSIX segment names over the attach socket.
 */
export interface SessionWelcome<Table, Claims> {
  protocol: number
  layoutVersion: number
  /** This connection's write-lock token (attached processes: LOCK_TOKEN.EXTERNAL and up). */
  token: number
  /** The image table. */
  table: Table
  /** This connection's claims (layout.ts CLAIM_WORDS per slot). */
  claims: Claims
  maxSlots: number
  lockTimeoutMs: number
}

/** Reply to 'open'. */
export interface SessionOpened {
  slot: number
  epoch: number
  descriptor: ImageDescriptor
}

export type ServerToSession =
  | { op: 'reply', req: number, result: unknown }
  | { op: 'reply', req: number, error: ErrorBody }
  | { op: 'event', type: ChangeType, descriptor: ImageDescriptor }
