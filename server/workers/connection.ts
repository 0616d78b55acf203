/**
 * One worker-thread client, seen from the server: the session core (server/sessions/) over a MessagePort.
 *
 * What is a worker's own:
 * - memory travels as SharedArrayBuffers: the welcome posts the table and a claims array the server made
 *   (a plain SharedArrayBuffer, nothing to release), and 'block' posts block buffers;
 * - the thread takes its leases, pins, loans and locks itself with atomics: the on-behalf ops are not served;
 * - it always gets store events (its store emits them to whoever listens there);
 * - input is trusted more than on the attach socket: a worker runs in this process, from a module the
 *   server's owner chose, so a malformed message is ignored rather than answered by cutting the port, and
 *   postMessage has no queue of ours to bound.
 */
import type { MessagePort } from 'node:worker_threads'
import { CLAIM_WORDS, LAYOUT_VERSION } from '../../protocol/layout.js'
import type { ServerToSession, SessionToServer } from '../../protocol/session-messages.js'
import { WORKER_OPS, WORKER_PROTOCOL_VERSION, type Welcome } from '../../protocol/worker-messages.js'
import type { SessionHub } from '../sessions/hub.js'
import { Session } from '../sessions/session.js'

export class WorkerConnection extends Session {
  declare claims: Int32Array

  constructor (
    hub: SessionHub,
    private readonly port: MessagePort,
    token: number,
    private readonly onClose: (conn: WorkerConnection) => void,
  ) {
    super(hub, token, WORKER_OPS)
    this.claims = new Int32Array(new SharedArrayBuffer(hub.store.table.maxSlots * CLAIM_WORDS * Int32Array.BYTES_PER_ELEMENT))
    port.on('message', (msg: unknown) => {
      if (typeof msg === 'object' && msg !== null) this.receive(msg as SessionToServer)
    })
    // 'close' fires when the other side closes its port or its thread exits, cleanly or not.
    port.on('close', () => this.close())
    port.start()
    this.watch(true)
  }

  protected send (msg: ServerToSession): void {
    if (!this.isClosed) this.port.postMessage(msg)
  }

  protected welcome (): Welcome {
    const table = this.store.table
    return {
      protocol: WORKER_PROTOCOL_VERSION,
      layoutVersion: LAYOUT_VERSION,
      token: this.token,
      table: table.buffer,
      claims: this.claims.buffer as SharedArrayBuffer,
      maxSlots: table.maxSlots,
      lockTimeoutMs: this.store.lockTimeoutMs,
    }
  }

  protected disconnect (): void {
    this.port.removeAllListeners()
    this.port.close()
  }

  protected afterClose (): void {
    this.onClose(this)
  }
}
