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
 *
 * The requests, replies and events are the session protocol's (./session-messages.ts); this file adds what
 * is the socket's own: the line framing, the attach hello and welcome, and `GET /shm`.
 */
import type {
  AttachHelloRequest, ServerToSession, SessionNotice, SessionOpened, SessionRequest, SessionWelcome,
} from './session-messages.js'
import { SESSION_PROTOCOL_VERSION } from './session-messages.js'

export const ATTACH_PROTOCOL_VERSION = SESSION_PROTOCOL_VERSION

/** Longest line either side accepts; a longer one is a protocol error and closes the connection. */
export const ATTACH_MAX_LINE_BYTES = 1024 * 1024

/** The ops an attach connection serves ('block' is not one: an attached process maps segments by name). */
export const ATTACH_OPS = [
  'hello', 'describe', 'list', 'create', 'view', 'delete', 'watch', 'open', 'close', 'begin', 'commit', 'loan', 'publish', 'cancel',
] as const

export type AttachRequest = AttachHelloRequest | Extract<SessionRequest, { op: Exclude<typeof ATTACH_OPS[number], 'hello'> }>

/** Fire-and-forget notices from a client. */
export type AttachNotice = SessionNotice

export type AttachToServer = AttachRequest | AttachNotice

/** Reply to 'hello': segment names (claims null when the server keeps them), and the server's process id. */
export type AttachWelcome = SessionWelcome<string, string | null> & { pid: number }

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
export type AttachOpened = SessionOpened

export type ServerToAttach = ServerToSession

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
