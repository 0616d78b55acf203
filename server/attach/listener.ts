/**
 * The attach service: where processes on the same host register (a Unix socket in /dev/shm), plus the relay
 * thread that brings their commits to this process's waiters. Started by createServer when shared memory is
 * on; closing it recovers every attached process's claims, as if each had died.
 */
import { chmodSync } from 'node:fs'
import net from 'node:net'
import { pxpError } from '../../protocol/errors.js'
import { LOCK_TOKEN } from '../../protocol/layout.js'
import type { ShmBlockProvider } from '../memory/shm-provider.js'
import type { ImageStore } from '../store/image-store.js'
import { SessionHub } from '../sessions/hub.js'
import { CommitRelay } from './commit-relay.js'
import { AttachConnection } from './connection.js'

export class AttachService {
  /** The socket's path (a Unix socket file in /dev/shm with the store's file mode). */
  readonly address: string
  private readonly server: net.Server
  private readonly connections = new Set<AttachConnection>()
  private readonly relay: CommitRelay
  private next = 0
  private closing: Promise<void> | null = null

  /** `hub`: shared with the server's worker bridge, so attached processes reach the same missing-image resolver. */
  constructor (
    store: ImageStore,
    private readonly provider: ShmBlockProvider,
    addonPath: string,
    private readonly hub: SessionHub = new SessionHub(store),
  ) {
    this.address = provider.socketPath
    this.server = net.createServer((socket) => this.accept(socket))
    this.relay = new CommitRelay(store.table, provider.native, addonPath)
  }

  get connectionCount (): number { return this.connections.size }

  /** Attached processes and the requests they have sent (for stats and tests). */
  stats (): { connections: number, requests: number } {
    let requests = 0
    for (const c of this.connections) requests += c.requests
    return { connections: this.connections.size, requests }
  }

  /** Start accepting. Throws PXP_ERR_SHM when the address cannot be bound. */
  async listen (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(pxpError('PXP_ERR_SHM', `cannot listen on the attach socket: ${err.message}`))
      this.server.once('error', onError)
      this.server.listen(this.address, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    // Connecting needs write permission on the file: the same people who may map the segments read-write.
    // (Until this chmod the umask decides; the table's attach key still keeps strangers out.)
    chmodSync(this.address, this.provider.mode)
    // Attached processes must not keep the server alive by themselves; the HTTP server decides that.
    this.server.unref()
  }

  /** Stop accepting, drop every attached process (recovering what each held) and stop the relay. Idempotent. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()))
      for (const conn of [...this.connections]) conn.close()
      await stopped
      await this.relay.close()
    })()
    await this.closing
  }

  private accept (socket: net.Socket): void {
    if (this.closing !== null) {
      socket.destroy()
      return
    }
    const index = this.next++
    const token = LOCK_TOKEN.EXTERNAL + index
    if (token >= LOCK_TOKEN.SERVER) {
      socket.destroy()
      return
    }
    const conn = new AttachConnection(this.hub, this.provider, socket, index, token, (c) => this.connections.delete(c))
    this.connections.add(conn)
  }
}
