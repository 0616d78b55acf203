/**
 * One process attached over the attach socket, seen from the server: the session core (server/sessions/)
 * over a Unix socket, one JSON object per line.
 *
 * What is the socket's own:
 * - anyone on the host who can open the socket file can talk to it, so the hello must carry the table's
 *   attach key (knowing it means the process could map the table: the segments' file mode is the
 *   permission check), and malformed input (not JSON, no "op", no integer "req", anything before hello)
 *   is a protocol error that drops the connection;
 * - its claims live where the process can reach them: a shared segment of its own (named by `index`)
 *   when it updates them itself (Node), or plain memory here when the server takes leases, locks and
 *   loans on its behalf (Python); the segment is released after recovery;
 * - events flow only while it watches, and a process that stops reading its socket is dropped once
 *   MAX_QUEUED_BYTES wait unread, rather than buffered without bound;
 * - the kernel closes the socket however the process ends (exit, crash, kill -9): that is the recovery signal.
 */
import type { Socket } from 'node:net'
import {
  ATTACH_OPS, ATTACH_PROTOCOL_VERSION, type AttachWelcome, encodeLine, LineDecoder,
} from '../../protocol/attach-messages.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM_WORDS, HEADER, LAYOUT_VERSION } from '../../protocol/layout.js'
import type { AttachHelloRequest, ServerToSession, SessionToServer } from '../../protocol/session-messages.js'
import type { BlockMemory } from '../memory/block-provider.js'
import type { ShmBlockProvider } from '../memory/shm-provider.js'
import type { SessionHub } from '../sessions/hub.js'
import { errorBody, Session } from '../sessions/session.js'

/** Bytes a connection may have queued unread before it is dropped as too slow (events are the only bulk). */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024

export class AttachConnection extends Session {
  private claimsMemory: BlockMemory | null = null
  private readonly decoder: LineDecoder

  constructor (
    hub: SessionHub,
    private readonly provider: ShmBlockProvider,
    private readonly socket: Socket,
    /** Attachment number: names the claims segment. */
    readonly index: number,
    token: number,
    private readonly onClose: (conn: AttachConnection) => void,
  ) {
    super(hub, token, ATTACH_OPS)
    this.decoder = new LineDecoder((msg) => this.admit(msg))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      try {
        this.decoder.push(chunk)
      } catch (err) {
        this.fail(`unreadable message: ${(err as Error).message}`)
      }
    })
    // 'close' follows an end, an error or a reset alike: the process is gone or has let go.
    socket.on('close', () => this.close())
    socket.on('error', () => {})
  }

  protected send (msg: ServerToSession): void {
    if (this.isClosed) return
    if (this.socket.writableLength > MAX_QUEUED_BYTES) {
      this.fail('the client does not read its socket')
      return
    }
    this.socket.write(encodeLine(msg))
  }

  protected welcome (msg: AttachHelloRequest): AttachWelcome {
    const words = this.store.table.words
    const key = Array.isArray(msg.key) ? msg.key : []
    if (key.length !== 2 || (key[0] | 0) !== words[HEADER.ATTACH_KEY] || (key[1] | 0) !== words[HEADER.ATTACH_KEY + 1]) {
      throw pxpError('PXP_ERR_FORBIDDEN', 'the attach key does not match this store\'s table')
    }
    const bytes = this.store.table.maxSlots * CLAIM_WORDS * Int32Array.BYTES_PER_ELEMENT
    if (msg.claims === true) {
      this.claimsMemory = this.provider.allocateClaims(this.index, bytes)
      this.claims = new Int32Array(this.claimsMemory.buffer, 0, bytes / Int32Array.BYTES_PER_ELEMENT)
    } else {
      this.claims = new Int32Array(bytes / Int32Array.BYTES_PER_ELEMENT)
    }
    return {
      protocol: ATTACH_PROTOCOL_VERSION,
      layoutVersion: LAYOUT_VERSION,
      token: this.token,
      table: this.store.table.segment as string,
      claims: this.claimsMemory?.name ?? null,
      maxSlots: this.store.table.maxSlots,
      lockTimeoutMs: this.store.lockTimeoutMs,
      pid: process.pid,
    }
  }

  protected disconnect (): void {
    this.socket.destroy()
  }

  protected afterClose (): void {
    if (this.claimsMemory !== null) this.provider.release(this.claimsMemory)
    this.onClose(this)
  }

  /** Check one decoded line before the session core sees it; anything malformed drops the connection. */
  private admit (msg: unknown): void {
    if (this.isClosed) return
    const m = msg as SessionToServer
    if (typeof m !== 'object' || m === null || typeof m.op !== 'string') {
      this.fail('every message is a JSON object with an "op"')
      return
    }
    if (m.op !== 'released') {
      if (!Number.isSafeInteger(m.req)) {
        this.fail('every request carries an integer "req"')
        return
      }
      if (!this.isGreeted && m.op !== 'hello') {
        this.fail('the first message must be "hello"')
        return
      }
    }
    this.receive(m)
  }

  /** A protocol violation: say why (best effort) and drop the connection. */
  private fail (why: string): void {
    if (this.isClosed) return
    this.socket.end(encodeLine({ op: 'reply', req: 0, error: errorBody(pxpError('PXP_ERR_PROTOCOL', why)) }))
    this.close()
  }
}
