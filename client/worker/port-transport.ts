/**
 * A worker thread's connection to the server: the MessagePort from `server.workerChannel()`. Messages are
 * structured clones, so SharedArrayBuffers (the table, blocks) travel as themselves.
 */
import type { MessagePort } from 'node:worker_threads'
import { pxpError } from '../../protocol/errors.js'
import type { Transport } from '../core/rpc.js'

export class PortTransport implements Transport {
  constructor (private readonly port: MessagePort) {}

  send (message: unknown): void { this.port.postMessage(message) }
  ref (): void { this.port.ref() }
  unref (): void { this.port.unref() }
  end (): void { this.port.close() }

  start (onMessage: (message: unknown) => void, onEnd: (reason: Error) => void): void {
    this.port.on('message', onMessage)
    // 'close' fires when either side closes the port, or the server's thread goes.
    this.port.on('close', () => onEnd(pxpError('PXP_ERR_CLOSED', 'connection to the server')))
  }
}
