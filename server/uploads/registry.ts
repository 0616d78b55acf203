/**
 * Every upload in progress, on every transport: its share of the staging budget and its two clocks.
 *
 * - Idle timeout: no byte for `uploadIdleTimeoutMs` aborts the upload (PXP_ERR_UPLOAD_TIMEOUT). A client
 *   that stops sending mid-body would otherwise hold its staging memory, or its reserved store memory,
 *   for as long as its socket stays open — forever, with keep-alives.
 * - Deadline: a body not complete `uploadDeadlineMs` after it started is aborted the same way, so a
 *   client dribbling one byte every few seconds cannot hold memory indefinitely either.
 * - Shutdown: `abortAll()` aborts whatever is still in progress (PXP_ERR_CLOSED) and says what it aborted.
 *
 * An upload is aborted through its ticket's AbortSignal: the transport that reads the body listens to it,
 * stops reading, answers with `signal.reason` and gives back what the upload held (the store is then as it
 * was). The ticket's lease is released by `end()`, which every path calls however the upload ended.
 */
import { EventEmitter } from 'node:events'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { ServerContext } from '../context.js'
import { StagingBudget, type StagingLease } from './staging-budget.js'

/** What the log says about an upload. */
export interface UploadInfo {
  /** `http` or `ws`. */
  readonly transport: string
  /** The request, e.g. `PUT /images/cam%2F1/data` or `put req=7 id="cam/1"`. */
  readonly what: string
  /** The client's address. */
  readonly client: string
  /** Bytes the body should have (0 when unknown: a chunked picture). */
  readonly bytes: number
}

export interface UploadReport extends UploadInfo {
  /** Bytes of the body received before it was aborted. */
  readonly received: number
  /** Milliseconds since the upload started. */
  readonly ms: number
}

export interface UploadClocks {
  /** Abort after this many ms without a byte. */
  idleTimeoutMs: number
  /** Abort a body not complete this many ms after the upload started. */
  deadlineMs: number
}

export class UploadTicket {
  private readonly controller = new AbortController()
  private idle: NodeJS.Timeout | null = null
  private deadline: NodeJS.Timeout | null = null
  private ended = false
  private complete = false
  private readonly started = Date.now()
  /** Bytes of the body received so far. */
  received = 0

  constructor (
    readonly info: UploadInfo,
    private readonly lease: StagingLease,
    clocks: UploadClocks,
    private readonly onEnd: (ticket: UploadTicket) => void,
  ) {
    this.idle = setTimeout(() => this.abort(pxpError('PXP_ERR_UPLOAD_TIMEOUT', `no bytes received for ${clocks.idleTimeoutMs} ms (uploadIdleTimeoutMs)`)), clocks.idleTimeoutMs).unref()
    this.deadline = setTimeout(() => this.abort(pxpError('PXP_ERR_UPLOAD_TIMEOUT', `the body was not complete after ${clocks.deadlineMs} ms (uploadDeadlineMs)`)), clocks.deadlineMs).unref()
  }

  /** Aborted (with `signal.reason`, a PixelportError) on a timeout or at shutdown. */
  get signal (): AbortSignal { return this.controller.signal }

  /** Staging bytes held. */
  get bytes (): number { return this.lease.bytes }

  /** `n` bytes of the body arrived: the idle clock starts again. */
  progress (n: number): void {
    this.received += n
    this.idle?.refresh()
  }

  /** Hold `n` more staging bytes, or throw PXP_ERR_STAGING_FULL. */
  grow (n: number): void {
    this.lease.grow(n)
  }

  /**
   * The whole body is in: the clocks stop (what follows — a write under the image's lock, a decode — is the
   * server's own work, bounded by its own limits). The lease is kept until `end()`.
   */
  bodyDone (): void {
    this.complete = true
    this.stopClocks()
  }

  /** True while the body is still being received. */
  get inProgress (): boolean {
    return !this.ended && !this.complete
  }

  /** Abort the upload with `err`: whoever reads its body stops and answers with it. */
  abort (err: PixelportError): void {
    if (!this.inProgress || this.controller.signal.aborted) return
    this.stopClocks()
    this.controller.abort(err)
  }

  /** The upload ended, however it ended: give back its staging bytes. Idempotent. */
  end (): void {
    if (this.ended) return
    this.ended = true
    this.stopClocks()
    this.lease.release()
    this.onEnd(this)
  }

  report (): UploadReport {
    return { ...this.info, received: this.received, ms: Date.now() - this.started }
  }

  private stopClocks (): void {
    if (this.idle !== null) clearTimeout(this.idle)
    if (this.deadline !== null) clearTimeout(this.deadline)
    this.idle = this.deadline = null
  }
}

export interface UploadRegistryEvents {
  /** An upload was aborted by a timeout or by shutdown. */
  aborted: [report: UploadReport, err: PixelportError]
}

export class UploadRegistry extends EventEmitter<UploadRegistryEvents> {
  readonly budget: StagingBudget
  private readonly active = new Set<UploadTicket>()
  private closing = false

  constructor (budgetBytes: number, private readonly clocks: UploadClocks) {
    super()
    this.budget = new StagingBudget(budgetBytes)
  }

  /**
   * Start an upload that will hold `bytes` of staging (more later with `grow`). Throws PXP_ERR_STAGING_FULL
   * when the budget has no room, PXP_ERR_CLOSED once the server is shutting down. The caller must call
   * `ticket.end()` however the upload ends.
   */
  begin (info: UploadInfo, bytes: number): UploadTicket {
    if (this.closing) throw pxpError('PXP_ERR_CLOSED', 'server')
    const lease = this.budget.reserve(bytes)
    const ticket = new UploadTicket(info, lease, this.clocks, (t) => this.active.delete(t))
    ticket.signal.addEventListener('abort', () => {
      this.emit('aborted', ticket.report(), ticket.signal.reason as PixelportError)
    }, { once: true })
    this.active.add(ticket)
    return ticket
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
}

const registries = new WeakMap<object, UploadRegistry>()

/** The server's one upload registry (shared by HTTP and WebSocket), made from its options on first use. */
export function uploadsOf (ctx: Pick<ServerContext, 'store' | 'options'>): UploadRegistry {
  let registry = registries.get(ctx.store)
  if (registry === undefined) {
    const { stagingBudgetBytes, uploadIdleTimeoutMs, uploadDeadlineMs } = ctx.options
    registry = new UploadRegistry(stagingBudgetBytes, { idleTimeoutMs: uploadIdleTimeoutMs, deadlineMs: uploadDeadlineMs })
    registries.set(ctx.store, registry)
  }
  return registry
}
