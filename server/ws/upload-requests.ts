/**
 * The `put` uploads of one WebSocket connection: a `put` without `data` opens one, `chunk`s fill it, `end`
 * commits it. An upload that fails before its `end` is remembered (bounded), so the chunks the client had
 * already sent are dropped quietly instead of each being answered with an error.
 *
 * The staging itself (budget, clocks, the store's begin/commit) is server/ws/uploads.ts's.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { RequestId } from '../../protocol/wire/fields.js'
import type { PutMessage, UploadChunkMessage } from '../../protocol/wire/client-messages.js'
import type { ServerMessage, ServerLimits } from '../../protocol/wire/server-messages.js'
import { evictableBy } from '../auth/image-access.js'
import type { Principal } from '../auth/tokens.js'
import type { ServerContext } from '../context.js'
import type { UploadRegistry } from '../uploads/registry.js'
import { errorReply } from './replies.js'
import { startUpload, type Upload } from './uploads.js'

/** Failed uploads whose late chunks are still recognised (older ones get PXP_ERR_BAD_REQUEST replies). */
const FAILED_UPLOADS_REMEMBERED = 64

/** What the uploads need of their connection. */
export interface UploadHost {
  readonly ctx: ServerContext
  readonly limits: ServerLimits
  readonly registry: UploadRegistry
  readonly principal: Principal
  /** The client's address, for the log lines about its uploads. */
  readonly clientAddress: string
  send (message: ServerMessage): void
  /** Keep `req` in flight until `work` settles; a failure is answered as that request's error. */
  track (req: RequestId, work: Promise<void>): void
}

export class UploadRequests {
  private readonly uploads = new Map<RequestId, Upload>()
  /** Uploads that failed before their `end`: their remaining chunks are dropped quietly (bounded, FIFO). */
  private readonly failed = new Set<RequestId>()

  constructor (private readonly host: UploadHost) {}

  has (req: RequestId): boolean { return this.uploads.has(req) }

  /** Requests of the uploads in progress (to answer each when the server shuts down). */
  requests (): IterableIterator<RequestId> { return this.uploads.keys() }

  put (msg: PutMessage): void {
    const { limits } = this.host
    const chunked = msg.data === undefined
    let upload: Upload
    try {
      if (chunked && this.uploads.size >= limits.maxUploads) throw pxpError('PXP_ERR_TOO_MANY_UPLOADS', limits.maxUploads)
      upload = startUpload(this.host.ctx, msg, this.host.registry, this.host.clientAddress, evictableBy(this.host.principal))
    } catch (err) {
      // The chunks that follow a refused header are dropped quietly instead of each being answered.
      this.refused(msg)
      throw err
    }
    if (chunked) {
      this.uploads.set(msg.req, upload)
      // Chunks stopped coming (idle timeout, deadline) or the server is shutting down: the client hears
      // why once, the upload gives back what it held, and its late chunks are dropped.
      upload.signal?.addEventListener('abort', () => {
        if (this.uploads.get(msg.req) !== upload) return
        this.fail(msg.req, upload)
        this.host.send(errorReply(msg.req, upload.signal!.reason))
      }, { once: true })
      return
    }
    try {
      if (upload.received < upload.byteLength) upload.write(0, msg.data!)
    } catch (err) {
      upload.abort()
      throw err
    }
    this.finish(msg.req, upload)
  }

  /** A `put` refused before it started: if chunks follow it, drop them quietly. */
  refused (msg: PutMessage): void {
    if (msg.data === undefined) this.rememberFailed(msg.req)
  }

  chunk (msg: UploadChunkMessage): void {
    const upload = this.uploads.get(msg.req)
    if (upload === undefined) {
      // An upload that already failed: its error was sent, its remaining chunks are dropped.
      if (this.failed.has(msg.req)) return
      throw pxpError('PXP_ERR_BAD_REQUEST', `chunk for ${JSON.stringify(msg.req)}, which is no upload in progress`)
    }
    try {
      upload.write(msg.offset, msg.data)
    } catch (err) {
      this.fail(msg.req, upload)
      throw err
    }
  }

  end (req: RequestId): void {
    const upload = this.uploads.get(req)
    if (upload === undefined) {
      if (this.failed.delete(req)) return
      throw pxpError('PXP_ERR_BAD_REQUEST', `end for ${JSON.stringify(req)}, which is no upload in progress`)
    }
    this.uploads.delete(req)
    this.finish(req, upload)
  }

  /** Abort the upload under `req`, answering it with `reason`; false when there is none. */
  cancel (req: RequestId, reason: PixelportError): boolean {
    const upload = this.uploads.get(req)
    if (upload === undefined) return false
    this.fail(req, upload)
    this.host.send(errorReply(req, reason))
    return true
  }

  /** Give back everything (the connection is closing). */
  abortAll (): void {
    for (const u of this.uploads.values()) u.abort()
    this.uploads.clear()
    this.failed.clear()
  }

  private fail (req: RequestId, upload: Upload): void {
    upload.abort()
    this.uploads.delete(req)
    this.rememberFailed(req)
  }

  private rememberFailed (req: RequestId): void {
    this.failed.add(req)
    if (this.failed.size > FAILED_UPLOADS_REMEMBERED) this.failed.delete(this.failed.values().next().value as RequestId)
  }

  private finish (req: RequestId, upload: Upload): void {
    this.host.track(req, upload.finish().then(
      (descriptor) => {
        this.host.ctx.metrics?.addBytesReceived('ws', upload.byteLength)
        this.host.send({ op: 'descriptor', req, descriptor })
      },
      (err: unknown) => {
        upload.abort()
        throw err
      },
    ))
  }
}
