/**
 * The attach protocol: how a process on the same host registers with the server over the attach socket
 * (a Unix socket file in /dev/shm, named in descriptors and `GET /shm`), one JSON object per line each way.
 *
 * The connection is the process's registration: every lease, pin, loan and write lock it takes is recorded
 * in its claims (in a shared segment the server made for it, or by the server on its behalf), and when the
 * socket closes — exit, crash, kill -9 — the server gives all of them back, exactly as for a worker thread.
 *
 * Node clients (`pixelport/attach`) map the table and their claims segment and run the same lock-free steps
 * as worker threads. Clients without atomic instructions (Python with numpy) ask the server to take leases,
 * locks and loans for them (`open`, `begin`/`commit`, `loan`/`publish`) and touch only pixels themselves.
 */
import type { ChangeType, ImageDescriptor } from './descriptor.js'
import type { ErrorBody } from './errors.js'
import type { CreateRequest } from './spec.js'

/** Bumped on any incompatible change to the messages below. */
export const ATTACH_PROTOCOL_VERSION = 1

/** Longest line either side accepts; a longer one is a protocol error and closes the connection. */
export const ATTACH_MAX_LINE_BYTES = 1024 * 1024

export type AttachRequest =
  | {
    op: 'hello', req: number, protocol: number, layoutVersion: number, pid: number,
    /** HEADER.ATTACH_KEY of the table as two unsigned 32-bit words: proof the client could map it. */
    key: [number, number]
    /** Ask for a claims segment the client updates itself (Node); false: the server keeps claims for it. */
    claims: boolean
  }
  | { op: 'describe', req: number, id: string }
  | { op: 'list', req: number }
  | { op: 'create', req: number, request: CreateRequest }
  | { op: 'view', req: number, id: string, view: { x: number, y: number, width: number, height: number, id?: string, readonly?: boolean } }
  | { op: 'delete', req: number, id: string }
  /** Send 'event' messages for every create, update and delete from now on (`false`: stop). */
  | { op: 'watch', req: number, on: boolean }
  // Operations the server performs on the client's behalf, recorded in its claims:
  /** Take a lease on a live image; replies with its slot, epoch and descriptor. */
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

/** Fire-and-forget notices from a client. */
export type AttachNotice =
  /** The client dropped the last lease of a deleted slot: the server may reuse its memory. */
  | { op: 'released', slot: number }

export type AttachToServer = AttachRequest | AttachNotice

export interface AttachWelcome {
  protocol: number
  layoutVersion: number
  /** This connection's write-lock token (LOCK_TOKEN.EXTERNAL and up). */
  token: number
  /** POSIX name of the image table segment. */
  table: string
  /** POSIX name of this connection's claims segment (CLAIM_WORDS per slot), or null when the server keeps them. */
  claims: string | null
  maxSlots: number
  lockTimeoutMs: number
  /** The server's process id. */
  pid: number
}

/** `GET /shm`: whether the store is in shared memory, and where a process on the same host attaches. */
export interface ShmInfo {
  enabled: boolean
  /** Why shared memory is off (not asked for, or unavailable here), else null. */
  reason: string | null
  layoutVersion: number
  /** POSIX name of the image table segment (null when off). */
  table: string | null
  /** Path of the attach socket, a Unix socket file in /dev/shm (null when off). */
  socket: string | null
  storeId: string | null
  prefix: string | null
  /** File mode of the segments (e.g. 0o600 = 384). */
  mode: number | null
  maxSlots: number
  lockTimeoutMs: number
  /** The server's process id. */
  pid: number
}

/** Reply to 'open'. */
export interface AttachOpened {
  slot: number
  epoch: number
  descriptor: ImageDescriptor
}

export type ServerToAttach =
  | { op: 'reply', req: number, result: unknown }
  | { op: 'reply', req: number, error: ErrorBody }
  | { op: 'event', type: ChangeType, descriptor: ImageDescriptor }

/**
 * Split a byte stream into lines of JSON. Calls `onMessage` per complete line; throws RangeError when a line
 * grows past ATTACH_MAX_LINE_BYTES (the caller closes the connection).
 */
export class LineDecoder {
  private pending = ''

  constructor (private readonly onMessage: (message: unknown) => void) {}

  push (chunk: string): void {
    let text = this.pending + chunk
    let newline = text.indexOf('\n')
    while (newline >= 0) {
      const line = text.slice(0, newline)
      text = text.slice(newline + 1)
      if (line.trim() !== '') this.onMessage(JSON.parse(line))
      newline = text.indexOf('\n')
    }
    if (text.length > ATTACH_MAX_LINE_BYTES) throw new RangeError(`line longer than ${ATTACH_MAX_LINE_BYTES} bytes`)
    this.pending = text
  }
}

/** One message as a line. */
export function encodeLine (message: unknown): string {
  return JSON.stringify(message) + '\n'
}
