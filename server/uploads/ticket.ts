/**
 * One upload's ticket: its share of the staging budget and its two clocks.
 *
 * - Idle timeout: no byte for `uploadIdleTimeoutMs` aborts the upload (PXP_ERR_UPLOAD_TIMEOUT). A client
 *   that stops sending mid-body would otherwise hold its staging memory, or its reserved store memory,
 *   for as long as its socket stays open — forever, with keep-alives.
 * - Deadline: a body not complete `uploadDeadlineMs` after it started is aborted the same way, so a
 *   client dribbling one byte every few seconds cannot hold memory indefinitely either.
 *
 * An upload is aborted through the ticket's AbortSignal: the transport that reads the body listens to it,
 * stops reading and answers with `signal.reason`. The lease is released by `end()`, which the upload calls
 * however it ended.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { StagingLease } from './staging-budget.js'

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
