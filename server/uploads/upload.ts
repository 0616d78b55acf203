/**
 * The three kinds of upload, whatever the transport: the transport only feeds bytes in order (`write`),
 * says when the body is complete (`finish`) or gives up (`abort`), and listens to `signal`, which the
 * upload's clocks or shutdown abort. Everything else — where the bytes go, the byte count, the commit or
 * the giving back, the staging budget — happens here, once.
 *
 * - A new image from raw C-order bytes: id and memory reserved in the store at once (invisible), the
 *   bytes land straight in shared memory, `finish` publishes it (store.createFrom).
 * - An existing image overwritten: the bytes are staged in a private buffer and written under the image's
 *   write lock in one copy at `finish`, so a slow uploader never holds the lock, and an upload that fails
 *   leaves the image with its bytes and generation.
 * - A picture file (PNG, JPEG, WebP, TIFF): staged as it arrives (the budget grows with a body of unknown
 *   length), then at `finish` checked against the limits, the decoded pixels charged to the budget, the id
 *   and memory reserved, and only then decoded into it (store.createFrom).
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { CreateRequest, Layout } from '../../protocol/spec.js'
import { decodePixels, planDecode } from '../formats/decode.js'
import type { ImageStore, MayEvict, PendingImage } from '../store/image-store.js'
import type { StagingPool } from './staging-pool.js'
import type { UploadTicket } from './ticket.js'

export interface Upload {
  /** Bytes the body has (0 for a picture of unknown length). */
  readonly byteLength: number
  /** Bytes received so far. */
  readonly received: number
  /**
   * Aborted (reason: a PixelportError) when the upload timed out or the server is shutting down: the
   * transport stops feeding and answers with the reason. Null for an upload whose bytes came whole.
   */
  readonly signal: AbortSignal | null
  /** Append the next bytes. Too many: PXP_ERR_BYTE_COUNT (or PXP_ERR_BODY_TOO_LARGE), and the upload is aborted. */
  write (chunk: Uint8Array): void
  /** The body is complete: publish or overwrite. However it ends, everything held is given back. */
  finish (): Promise<ImageDescriptor>
  /** Give everything back (a disconnect, a bad chunk). Idempotent; during `finish`, finish gives back. */
  abort (): void
}

/** What the upload kinds share: the order of events, the ticket, and giving back exactly once. */
abstract class StagedUpload implements Upload {
  received = 0
  private state: 'receiving' | 'finishing' | 'ended' = 'receiving'

  constructor (readonly byteLength: number, protected readonly ticket: UploadTicket | null) {}

  get signal (): AbortSignal | null { return this.ticket?.signal ?? null }

  write (chunk: Uint8Array): void {
    if (this.state !== 'receiving') throw pxpError('PXP_ERR_CLOSED', 'upload')
    try {
      this.take(chunk, this.received + chunk.byteLength)
    } catch (err) {
      this.abort()
      throw err
    }
    this.received += chunk.byteLength
    this.ticket?.progress(chunk.byteLength)
  }

  async finish (): Promise<ImageDescriptor> {
    if (this.state !== 'receiving') throw pxpError('PXP_ERR_CLOSED', 'upload')
    this.state = 'finishing'
    this.ticket?.bodyDone()
    try {
      return await this.complete()
    } finally {
      this.end()
    }
  }

  abort (): void {
    // A finish in progress may still be copying out of what the upload holds: it gives back when done.
    if (this.state === 'receiving') this.end()
  }

  private end (): void {
    if (this.state === 'ended') return
    this.state = 'ended'
    this.release()
    this.ticket?.end()
  }

  /** Keep `chunk`; `total` is what the body will then have. Throws when it may not. */
  protected abstract take (chunk: Uint8Array, total: number): void
  /** The body is complete: make it visible. */
  protected abstract complete (): Promise<ImageDescriptor>
  /** Give back what the upload holds (it did not complete, or it did and the rest is garbage). */
  protected abstract release (): void
}

/** A new image: the bytes land in memory the store reserved for it. */
export class CreateUpload extends StagedUpload {
  private readonly pending: PendingImage
  private readonly created: Promise<ImageDescriptor>
  private readonly bodyComplete: () => void
  private readonly bodyFailed: (err: Error) => void

  /** Reserves the id and memory now: the store's errors (PXP_ERR_ALREADY_EXISTS, PXP_ERR_CAPACITY, …) throw from here. */
  constructor (store: ImageStore, request: CreateRequest, ticket: UploadTicket | null, mayEvict?: MayEvict) {
    let complete!: () => void
    let fail!: (err: Error) => void
    const body = new Promise<void>((resolve, reject) => {
      complete = resolve
      fail = reject
    })
    let pending: PendingImage | undefined
    // The one begin → commit/abort sequence: the image is published when the body is complete, and
    // everything is given back when it is not. The reservation happens now, synchronously.
    const created = store.createFrom(request, async (p) => {
      pending = p
      await body
    }, mayEvict)
    super(pending!.byteLength, ticket)
    this.pending = pending!
    this.created = created
    this.bodyComplete = complete
    this.bodyFailed = fail
    // Awaited by finish(); an abort nobody awaits must not be an unhandled rejection.
    created.catch(() => {})
  }

  get id (): string { return this.pending.id }

  protected take (chunk: Uint8Array): void {
    this.pending.write(chunk)
  }

  protected async complete (): Promise<ImageDescriptor> {
    if (this.received !== this.byteLength) this.bodyFailed(pxpError('PXP_ERR_BYTE_COUNT', this.byteLength, this.received))
    else this.bodyComplete()
    return await this.created
  }

  protected release (): void {
    // After a commit this changes nothing; before one, the id and memory go back now, not a tick later.
    this.pending.abort()
    this.bodyFailed(pxpError('PXP_ERR_CLOSED', 'upload'))
  }
}

/** An existing image overwritten: the bytes are staged, then written in one copy under the lock. */
export class OverwriteUpload extends StagedUpload {
  private staging: Buffer | null = null
  private inline: Uint8Array | null = null

  /** `inline`: the whole body, already here (nothing is staged; no bytes may follow). */
  constructor (private readonly store: ImageStore, readonly id: string, byteLength: number, ticket: UploadTicket | null, private readonly pool: StagingPool, inline?: Uint8Array) {
    super(byteLength, ticket)
    if (inline === undefined) {
      this.staging = pool.take(byteLength)
    } else {
      this.inline = inline
      this.received = inline.byteLength
    }
  }

  protected take (chunk: Uint8Array, total: number): void {
    if (this.staging === null) throw pxpError('PXP_ERR_BAD_REQUEST', `upload of ${JSON.stringify(this.id)} was sent inline; no chunks may follow`)
    if (total > this.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', this.byteLength, total)
    this.staging.set(chunk, this.received)
  }

  protected async complete (): Promise<ImageDescriptor> {
    if (this.received !== this.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', this.byteLength, this.received)
    return await this.store.write(this.id, this.inline ?? this.staging!)
  }

  protected release (): void {
    // Nothing reads or writes the buffer any more: finish() has returned, or it never ran.
    if (this.staging !== null) this.pool.give(this.staging)
    this.staging = null
    this.inline = null
  }
}

/** Where a picture's pixels go: the fields the file does not define. */
export interface PictureTarget {
  id?: string
  layout?: Layout
  readonly?: boolean
  frames?: number
}

/** A picture file: staged whole, decoded at finish into a new image. */
export class PictureUpload extends StagedUpload {
  private chunks: Uint8Array[] = []

  /**
   * @param length the declared length, if any: the body must be exactly that long (the ticket holds it)
   * @param limit the largest body: PXP_ERR_BODY_TOO_LARGE as soon as it is passed
   */
  constructor (
    private readonly store: ImageStore,
    private readonly target: PictureTarget,
    private readonly length: number | undefined,
    private readonly limit: number,
    ticket: UploadTicket,
    private readonly mayEvict?: MayEvict,
  ) {
    super(length ?? 0, ticket)
  }

  protected take (chunk: Uint8Array, total: number): void {
    if (this.length !== undefined && total > this.length) throw pxpError('PXP_ERR_BYTE_COUNT', this.length, `more than ${this.length}`)
    if (total > this.limit) throw pxpError('PXP_ERR_BODY_TOO_LARGE', `more than ${this.limit}`, this.limit)
    // Memory grows with what arrives, not with what was declared; without a length, so does the budget.
    if (this.length === undefined) this.ticket!.grow(chunk.byteLength)
    this.chunks.push(chunk)
  }

  protected async complete (): Promise<ImageDescriptor> {
    if (this.length !== undefined && this.received !== this.length) throw pxpError('PXP_ERR_BYTE_COUNT', this.length, this.received)
    const file = Buffer.concat(this.chunks, this.received)
    this.chunks = []
    // The header first: a file over the limits is refused before anything is reserved or decoded.
    const plan = await planDecode(file, this.store.limits)
    this.ticket!.grow(plan.spec.byteLength)
    const { id, layout, readonly, frames } = this.target
    return await this.store.createFrom({ ...plan.request, id, layout, readonly, frames }, async (pending) => {
      pending.write(await decodePixels(file, plan))
    }, this.mayEvict)
  }

  protected release (): void {
    this.chunks = []
  }
}
