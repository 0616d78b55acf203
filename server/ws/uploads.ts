/**
 * `put`: create or overwrite an image from bytes sent inline or in chunks.
 *
 * - A new image is reserved at once (`store.beginCreate`: id taken, memory allocated, invisible) and the
 *   chunks land straight in its shared memory; `end` publishes it, a failure or disconnect gives it all back.
 * - An existing image is overwritten as one new generation: its chunks are staged in a private buffer and
 *   written under the write lock in one copy at `end`, so a slow uploader never holds the lock.
 * - A chunked upload holds a ticket (server/uploads): its bytes, reserved or staged, count against the
 *   server's staging budget, shared with HTTP uploads, and its clocks abort it when chunks stop coming
 *   (`Upload.signal`). A `put` with inline `data` needs none: its bytes are already in the message.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { PutMessage } from '../../protocol/messages.js'
import { specFromRequest, type CreateRequest } from '../../protocol/spec.js'
import type { ServerContext } from '../context.js'
import type { MayEvict } from '../store/image-store.js'
import type { PendingImage } from '../store/image-store.js'
import type { UploadInfo, UploadRegistry, UploadTicket } from '../uploads/registry.js'

const SPEC_FIELDS = ['width', 'height', 'mode', 'shape', 'typestr', 'layout', 'readonly', 'frames'] as const

function specFields (msg: PutMessage): CreateRequest {
  const fields: CreateRequest = {}
  for (const key of SPEC_FIELDS) if (msg[key] !== undefined) (fields as Record<string, unknown>)[key] = msg[key]
  return fields
}

/** One upload in progress. */
export interface Upload {
  readonly id: string
  readonly byteLength: number
  readonly received: number
  /** Append the next bytes; `offset` must equal the bytes received so far. */
  write (offset: number, data: Uint8Array): void
  /** All bytes are in: publish or overwrite. */
  finish (): Promise<ImageDescriptor>
  /** Give everything back. Idempotent. */
  abort (): void
  /** Aborted (reason: a PixelportError) when the upload timed out or the server is shutting down; null inline. */
  readonly signal: AbortSignal | null
}

/**
 * Start the upload a `put` header describes. Validates everything it can before any bytes arrive: spec,
 * byte count, read-only images, the staging budget, capacity. `client` names the connection in the log.
 */
export function startUpload (ctx: ServerContext, msg: PutMessage, uploads: UploadRegistry, client: string, mayEvict?: MayEvict): Upload {
  const fields = specFields(msg)
  const declared = msg.byteLength ?? msg.data?.byteLength
  if (declared === undefined) throw pxpError('PXP_ERR_VALIDATION', 'put: give data, or byteLength followed by chunks')
  if (msg.data !== undefined && msg.byteLength !== undefined && msg.byteLength !== msg.data.byteLength) {
    throw pxpError('PXP_ERR_BYTE_COUNT', msg.byteLength, msg.data.byteLength)
  }
  const info: UploadInfo = { transport: 'ws', what: `put req=${JSON.stringify(msg.req)} id=${JSON.stringify(msg.id ?? null)}`, client, bytes: declared }
  if (msg.id !== undefined && ctx.store.has(msg.id)) return overwrite(ctx, msg.id, fields, declared, () => uploads.begin(info, declared), msg.data)
  // Reserved before the store memory is: a crowd of stalled creates cannot hold more than the budget.
  const ticket = msg.data === undefined ? uploads.begin(info, declared) : null
  let pending: PendingImage
  try {
    pending = ctx.store.beginCreate({ ...fields, ...(msg.id !== undefined ? { id: msg.id } : {}) }, undefined, mayEvict)
  } catch (err) {
    ticket?.end()
    throw err
  }
  if (declared !== pending.byteLength) {
    pending.abort()
    ticket?.end()
    throw pxpError('PXP_ERR_BYTE_COUNT', pending.byteLength, declared)
  }
  return createUpload(pending, ticket)
}

function createUpload (pending: PendingImage, ticket: UploadTicket | null): Upload {
  const abort = (): void => {
    pending.abort()
    ticket?.end()
  }
  return {
    id: pending.id,
    byteLength: pending.byteLength,
    get received () { return pending.bytesWritten },
    signal: ticket?.signal ?? null,
    write (offset, data) {
      checkOffset(pending.id, offset, pending.bytesWritten)
      pending.write(data)
      ticket?.progress(data.byteLength)
    },
    async finish () {
      ticket?.bodyDone()
      try {
        if (pending.bytesWritten !== pending.byteLength) {
          pending.abort()
          throw pxpError('PXP_ERR_BYTE_COUNT', pending.byteLength, pending.bytesWritten)
        }
        return pending.commit()
      } finally {
        ticket?.end()
      }
    },
    abort,
  }
}

function overwrite (ctx: ServerContext, id: string, fields: CreateRequest, declared: number, begin: () => UploadTicket, inline?: Uint8Array): Upload {
  const current = ctx.store.describe(id)
  const { layout: _layout, readonly: _readonly, frames: _frames, ...shapeFields } = fields
  if (Object.keys(shapeFields).length > 0) {
    const spec = specFromRequest(shapeFields, ctx.store.limits)
    const same = spec.dtype.typestr === current.typestr && spec.shape.length === current.shape.length &&
      spec.shape.every((d, i) => d === current.shape[i])
    if (!same) {
      throw pxpError('PXP_ERR_VALIDATION', `put would change image ${JSON.stringify(id)} from [${current.shape.join(', ')}] ${current.typestr} to [${spec.shape.join(', ')}] ${spec.dtype.typestr}; delete it first`)
    }
  }
  if (declared !== current.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', current.byteLength, declared)
  // A copied (line-based) image is writable through the store; only a read-only image is not.
  if (current.readonly && !current.copied) throw pxpError('PXP_ERR_READONLY', id)
  if (inline !== undefined) {
    // Everything is here already: no staging, one copy under the lock.
    return {
      id,
      byteLength: declared,
      received: declared,
      write () { throw pxpError('PXP_ERR_BAD_REQUEST', `upload of ${JSON.stringify(id)} was sent inline; no chunks may follow`) },
      finish: async () => await ctx.store.write(id, inline),
      abort () {},
      signal: null,
    }
  }
  // Charged to the budget before the buffer is allocated.
  const ticket = begin()
  let staging: Buffer | null
  try {
    staging = Buffer.allocUnsafeSlow(declared)
  } catch (err) {
    ticket.end()
    throw err
  }
  let received = 0
  const release = (): void => {
    if (staging === null) return
    staging = null
    ticket.end()
  }
  return {
    id,
    byteLength: declared,
    get received () { return received },
    signal: ticket.signal,
    write (offset, data) {
      if (staging === null) throw pxpError('PXP_ERR_CLOSED', 'upload')
      checkOffset(id, offset, received)
      if (received + data.byteLength > declared) {
        const got = received + data.byteLength
        release()
        throw pxpError('PXP_ERR_BYTE_COUNT', declared, got)
      }
      staging.set(data, received)
      received += data.byteLength
      ticket.progress(data.byteLength)
    },
    async finish () {
      if (staging === null) throw pxpError('PXP_ERR_CLOSED', 'upload')
      ticket.bodyDone()
      if (received !== declared) {
        release()
        throw pxpError('PXP_ERR_BYTE_COUNT', declared, received)
      }
      try {
        return await ctx.store.write(id, staging)
      } finally {
        release()
      }
    },
    abort: release,
  }
}

function checkOffset (id: string, offset: number, received: number): void {
  if (offset !== received) {
    throw pxpError('PXP_ERR_BAD_REQUEST', `upload of ${JSON.stringify(id)}: chunk at offset ${offset}, expected ${received} (chunks are sent in order)`)
  }
}
