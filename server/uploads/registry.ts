/**
 * The staging service: every upload in progress, on every transport (HTTP PUT, raw and picture POST,
 * WebSocket put). One place reserves an upload's share of the staging budget before a byte of its body is
 * read, starts its clocks (./ticket.ts), makes the upload that stages and commits or aborts it
 * (./upload.ts), and gives everything back however it ends. The transports only feed bytes.
 *
 * - A full budget refuses the next upload at once with PXP_ERR_STAGING_FULL, so a crowd of slow or stalled
 *   uploaders can never hold more than the budget (./staging-budget.ts).
 * - Shutdown: `abortAll()` aborts whatever is still in progress (PXP_ERR_CLOSED) and says what it aborted.
 */
import { EventEmitter } from 'node:events'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { specFromRequest, type CreateRequest } from '../../protocol/spec.js'
import type { ServerContext } from '../context.js'
import type { ImageStore, MayEvict } from '../store/image-store.js'
import { StagingBudget } from './staging-budget.js'
import { StagingPool } from './staging-pool.js'
import { UploadTicket, type UploadClocks, type UploadInfo, type UploadReport } from './ticket.js'
import { CreateUpload, OverwriteUpload, PictureUpload, type PictureTarget, type Upload } from './upload.js'

export type { PictureTarget, Upload, UploadInfo, UploadReport }

/** Who is uploading what, for the log: the upload's size is filled in by the service. */
export type UploadSource = Omit<UploadInfo, 'bytes'>

export interface UploadRegistryEvents {
  /** An upload was aborted by a timeout or by shutdown. */
  aborted: [report: UploadReport, err: PixelportError]
}

export interface UploadRegistryOptions extends UploadClocks {
  /** Bytes all uploads in progress may hold at once. */
  budgetBytes: number
  /** Idle staging buffers kept for overwrites between uploads (touching fresh memory is what costs). */
  idleBufferBytes: number
}

/** Idle staging memory kept for overwrites: a few frames of a typical size, never more than one largest image. */
const STAGING_IDLE_BYTES = 64 * 1024 * 1024

export class UploadRegistry extends EventEmitter<UploadRegistryEvents> {
  readonly budget: StagingBudget
  private readonly pool: StagingPool
  private readonly active = new Set<UploadTicket>()
  private closing = false

  constructor (private readonly store: ImageStore, private readonly options: UploadRegistryOptions) {
    super()
    this.budget = new StagingBudget(options.budgetBytes)
    this.pool = new StagingPool(options.idleBufferBytes)
  }

  /**
   * A new image from raw C-order bytes: the request and `declared` length checked, the budget taken
   * (PXP_ERR_STAGING_FULL), then the id and memory reserved (invisible until `finish`). `inline`: the whole
   * body, already in memory (a WebSocket put with `data`): nothing is staged, no budget, no clocks.
   */
  create (source: UploadSource, request: CreateRequest, given: { declared?: number, inline?: Uint8Array, mayEvict?: MayEvict } = {}): CreateUpload {
    const { declared, inline, mayEvict } = given
    const bytes = specFromRequest(request, this.store.limits).byteLength
    if (declared !== undefined && declared !== bytes) throw pxpError('PXP_ERR_BYTE_COUNT', bytes, declared)
    if (inline !== undefined) {
      const upload = new CreateUpload(this.store, request, null, mayEvict)
      upload.write(inline)
      return upload
    }
    return this.staged(source, bytes, (ticket) => new CreateUpload(this.store, request, ticket, mayEvict))
  }

  /**
   * Overwrite image `id` with exactly its byteLength of C-order bytes, staged and written in one copy at
   * `finish`. Refuses a read-only image (a copied one is writable through the store) and a `declared`
   * length that is not the image's before anything is reserved. `inline` as for `create`.
   */
  overwrite (source: UploadSource, id: string, given: { declared?: number, inline?: Uint8Array } = {}): OverwriteUpload {
    const { declared, inline } = given
    const current = this.store.describe(id)
    if (current.readonly && !current.copied) throw pxpError('PXP_ERR_READONLY', id)
    if (declared !== undefined && declared !== current.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', current.byteLength, declared)
    if (inline !== undefined) return new OverwriteUpload(this.store, id, current.byteLength, null, this.pool, inline)
    return this.staged(source, current.byteLength, (ticket) => new OverwriteUpload(this.store, id, current.byteLength, ticket, this.pool))
  }

  /**
   * A picture file of `length` bytes (undefined: not known; the budget then grows as it arrives) and at
   * most `limit`, decoded into a new image at `finish`.
   */
  picture (source: UploadSource, target: PictureTarget, length: number | undefined, limit: number, mayEvict?: MayEvict): PictureUpload {
    return this.staged(source, length ?? 0, (ticket) => new PictureUpload(this.store, target, length, limit, ticket, mayEvict))
  }

  /** Uploads in progress and the staging bytes they hold. */
  stats (): { uploads: number, bytes: number, maxBytes: number } {
    return { uploads: this.active.size, bytes: this.budget.bytes, maxBytes: this.budget.maxBytes }
  }

  /** Staging bytes held by the uploads of one transport (`http`, `ws`). */
  bytesOf (transport: string): number {
    let bytes = 0
    for (const ticket of this.active) if (ticket.info.transport === transport) bytes += ticket.bytes
    return bytes
  }

  /**
   * Shutdown: refuse new uploads and abort every one in progress with PXP_ERR_CLOSED. Returns what was
   * aborted (uploads whose body was complete are left to finish: they are the server's own work now).
   */
  abortAll (): UploadReport[] {
    this.closing = true
    const aborted: UploadReport[] = []
    for (const ticket of [...this.active]) {
      if (!ticket.inProgress || ticket.signal.aborted) continue
      aborted.push(ticket.report())
      ticket.abort(pxpError('PXP_ERR_CLOSED', 'server'))
    }
    return aborted
  }

  /**
   * Take a ticket holding `bytes` of the budget, then make the upload; when that fails, the ticket ends
   * (so a refused upload holds nothing). Throws PXP_ERR_STAGING_FULL or, during shutdown, PXP_ERR_CLOSED.
   */
  private staged<U extends Upload> (source: UploadSource, bytes: number, make: (ticket: UploadTicket) => U): U {
    if (this.closing) throw pxpError('PXP_ERR_CLOSED', 'server')
    const lease = this.budget.reserve(bytes)
    const ticket = new UploadTicket({ ...source, bytes }, lease, this.options, (t) => this.active.delete(t))
    this.active.add(ticket)
    try {
      const upload = make(ticket)
      ticket.signal.addEventListener('abort', () => {
        this.emit('aborted', ticket.report(), ticket.signal.reason as PixelportError)
      }, { once: true })
      return upload
    } catch (err) {
      ticket.end()
      throw err
    }
  }
}

const registries = new WeakMap<object, UploadRegistry>()

/** The server's one staging service (shared by HTTP and WebSocket), made from its options on first use. */
export function uploadsOf (ctx: Pick<ServerContext, 'store' | 'options'>): UploadRegistry {
  let registry = registries.get(ctx.store)
  if (registry === undefined) {
    const { stagingBudgetBytes, uploadIdleTimeoutMs, uploadDeadlineMs, maxImageBytes } = ctx.options
    registry = new UploadRegistry(ctx.store, {
      budgetBytes: stagingBudgetBytes,
      idleTimeoutMs: uploadIdleTimeoutMs,
      deadlineMs: uploadDeadlineMs,
      idleBufferBytes: Math.min(STAGING_IDLE_BYTES, maxImageBytes),
    })
    registries.set(ctx.store, registry)
  }
  return registry
}
