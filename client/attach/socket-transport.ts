/**
 * An attached process's connection to the server: the attach socket (a Unix socket), one JSON object per
 * line each way (protocol/attach-messages.ts).
 *
 * The socket is the process's registration with the server: while it is open the server keeps what this
 * process holds; when it closes (however the process ends) the server takes it all back.
 */
import net from 'node:net'
import { encodeLine, LineDecoder } from '../../protocol/attach-messages.js'
import { pxpError } from '../../protocol/errors.js'
import type { Transport } from '../core/rpc.js'

export class SocketTransport implements Transport {
  private constructor (private readonly socket: net.Socket) {}

  /** Connect to the attach socket at `address` (a Unix socket path). Throws PXP_ERR_SHM when nobody listens. */
  static async connect (address: string): Promise<SocketTransport> {
    const socket = net.connect(address)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', (err) => reject(pxpError('PXP_ERR_SHM', `cannot reach the attach socket ${JSON.stringify(address)}: ${err.message}`)))
    })
    return new SocketTransport(socket)
  }

  send (message: unknown): void { this.socket.write(encodeLine(message)) }
  ref (): void { this.socket.ref() }
  unref (): void { this.socket.unref() }
  end (): void { this.socket.end() }

  start (onMessage: (message: unknown) => void, onEnd: (reason: Error) => void): void {
    const decoder = new LineDecoder(onMessage)
    const socket = this.socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      try {
        decoder.push(chunk)
      } catch (err) {
        socket.destroy()
        onEnd(pxpError('PXP_ERR_PROTOCOL', `unreadable message from the server: ${(err as Error).message}`))
      }
    })
    // The 'close' that follows any error ends the connection.
    socket.on('error', () => {})
    socket.on('close', () => onEnd(pxpError('PXP_ERR_CLOSED', 'connection to the server')))
  }
}
