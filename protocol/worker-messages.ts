/**
 * The session protocol (./session-messages.ts) as a worker thread speaks it over a MessagePort: memory
 * travels as SharedArrayBuffers (the table and claims in the welcome, blocks through 'block'). The worker
 * takes its own leases, locks and loans with atomics, so the on-behalf ops of the attach socket are not
 * served here; events always flow (no 'watch').
 */
import type {
  HelloRequest, ServerToSession, SessionNotice, SessionRequest, SessionWelcome,
} from './session-messages.js'
import { SESSION_PROTOCOL_VERSION } from './session-messages.js'

export const WORKER_PROTOCOL_VERSION = SESSION_PROTOCOL_VERSION

/** The ops a worker connection serves. */
export const WORKER_OPS = ['hello', 'block', 'describe', 'list', 'create', 'view', 'delete'] as const

export type WorkerRequest = HelloRequest | Extract<SessionRequest, { op: Exclude<typeof WORKER_OPS[number], 'hello'> }>

/** Fire-and-forget notices from a worker. */
export type WorkerNotice = SessionNotice

export type WorkerToServer = WorkerRequest | WorkerNotice

/** Reply to 'hello': the table (growable SharedArrayBuffer) and this connection's claims array. */
export type Welcome = SessionWelcome<SharedArrayBuffer, SharedArrayBuffer>

export type ServerToWorker = ServerToSession
