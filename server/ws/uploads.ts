/**
 * `put`: create or overwrite an image from bytes sent inline or in chunks, on the server's staging service
 * (server/uploads), which every upload path shares: its budget, its clocks, where the bytes go, the
 * commit or the giving back. What is the WebSocket's own is here: the message's fields, the rule that an
 * existing image keeps its shape, and chunks arriving in order at the offsets they name.
 *
 * - A new image is reserved at once (id taken, memory allocated, invisible) and the chunks land straight in
 *   its shared memory; `end` publishes it, a failure or disconnect gives it all back.
 * - An existing image is overwritten as one new generation: its chunks are staged in a private buffer and
 *   written under the write lock in one copy at `end`, so a slow uploader never holds the lock.
 * - A `put` with inline `data` holds no staging: its bytes are already in the message.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import type { PutMessage } from '../../protocol/messages.js'
import { specFromRequest, type CreateRequest } from '../../protocol/spec.js'
import type { ServerContext } from '../context.js'
import type { MayEvict } from '../store/image-store.js'
import type { Upload as StagingUpload, UploadRegistry, UploadSource } from '../uploads/registry.js'

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
  const source: UploadSource = { transport: 'ws', what: `put req=${JSON.stringify(msg.req)} id=${JSON.stringify(msg.id ?? null)}`, client }
  const given = { declared, inline: msg.data }
  if (msg.id !== undefined && ctx.store.has(msg.id)) {
    assertSameShape(ctx, msg.id, fields, declared)
    return inOrder(msg.id, uploads.overwrite(source, msg.id, given))
  }
  const upload = uploads.create(source, { ...fields, ...(msg.id !== undefined ? { id: msg.id } : {}) }, { ...given, mayEvict })
  return inOrder(upload.id, upload)
}

/** A put on an existing image may restate its shape, not change it; and it sends exactly its byte count. */
function assertSameShape (ctx: ServerContext, id: string, fields: CreateRequest, declared: number): void {
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
}

/** The staged upload, fed by chunks that must arrive in order. */
function inOrder (id: string, upload: StagingUpload): Upload {
  return {
    id,
    byteLength: upload.byteLength,
    get received () { return upload.received },
    signal: upload.signal,
    write (offset, data) {
      if (offset !== upload.received) {
        throw pxpError('PXP_ERR_BAD_REQUEST', `upload of ${JSON.stringify(id)}: chunk at offset ${offset}, expected ${upload.received} (chunks are sent in order)`)
      }
      upload.write(data)
    },
    finish: async () => await upload.finish(),
    abort: () => upload.abort(),
  }
}
