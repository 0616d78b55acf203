/**
 * Messages between a worker-thread client and the server's worker bridge, over a MessagePort.
 *
 * Only the slow paths use messages (connect, first mapping of a block, create, delete, line-based images);
 * opening, reading and writing an image whose block is mapped go through shared memory alone.
 */
import type { ChangeType, ImageDescriptor } from './descriptor.js'
import type { ErrorBody } from './errors.js'
import type { CreateRequest } from './spec.js'

export const WORKER_PROTOCOL_VERSION = 1

export type WorkerRequest =
  | { op: 'hello', req: number, protocol: number, layoutVersion: number }
  | { op: 'block', req: number, block: number }
  | { op: 'describe', req: number, id: string }
  | { op: 'list', req: number }
  | { op: 'create', req: number, request: CreateRequest }
  | { op: 'view', req: number, id: string, view: { x: number, y: number, width: number, height: number, id?: string, readonly?: boolean } }
  | { op: 'delete', req: number, id: string }

/** Fire-and-forget notices from a worker. */
export type WorkerNotice =
  /** Leases of a deleted slot reached 0: the server may reuse its memory. */
  { op: 'released', slot: number }

export type WorkerToServer = WorkerRequest | WorkerNotice

export interface Welcome {
  protocol: number
  layoutVersion: number
  /** This connection's write-lock token. */
  token: number
  /** The image table (growable SharedArrayBuffer). */
  table: SharedArrayBuffer
  /** This connection's claims array (layout.ts CLAIM_WORDS per slot). */
  claims: SharedArrayBuffer
  maxSlots: number
  lockTimeoutMs: number
}

export type ServerToWorker =
  | { op: 'reply', req: number, result: unknown }
  | { op: 'reply', req: number, error: ErrorBody }
  | { op: 'event', type: ChangeType, descriptor: ImageDescriptor }
