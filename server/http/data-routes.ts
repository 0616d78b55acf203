/**
 * Pixels over HTTP: download a consistent snapshot (whole or one byte range), overwrite with an upload.
 */
import type { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import { DESCRIPTOR_HEADER, encodeDescriptorHeader, PREFER_DESCRIPTOR, prefers } from '../../protocol/http-headers.js'
import type { ServerContext } from '../context.js'
import type { Snapshot } from '../store/snapshots.js'
import { acceptRawBodies, declaredLength, isStream, OCTET_STREAM } from './body.js'
import { etagOf, ifRangeAllows, matchesIfNoneMatch, parseRange } from './range.js'
import { meterDownload } from './meter.js'
import { binaryBody, dataHeaders, descriptorSchema, errorResponses, idParams, notModified } from './schemas.js'
import { receiveUpload } from './upload-body.js'

interface DataHeaders {
  'if-none-match'?: string
  range?: string
  'if-range'?: string
  prefer?: string
}

const bytesResponse = { description: 'Raw C-order bytes', type: 'string' } as const

export const dataRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const { store, snapshots, options } = ctx
  acceptRawBodies(app)
  // Pixels come as raw bytes only: a JSON body here is PXP_ERR_UNSUPPORTED_MEDIA_TYPE.
  app.removeContentTypeParser('application/json')

  /**
   * A snapshot held exactly as long as the response: released when it has been sent or the connection
   * closed, whichever comes first — also when the client went away while the copy was being made.
   */
  async function snapshotForResponse (reply: FastifyReply, id: string): Promise<Snapshot> {
    let snapshot: Snapshot | null = null
    let closed = false
    reply.raw.once('close', () => {
      closed = true
      snapshot?.release()
    })
    snapshot = await snapshots.acquire(id)
    if (closed) {
      snapshot.release()
      throw pxpError('PXP_ERR_ABORTED', 'the client went away before the download started')
    }
    return snapshot
  }

  // Raw C-order bytes of one consistent generation; honours Range, If-Range and If-None-Match
  app.get<{ Params: { id: string }, Headers: DataHeaders }>('/images/:id/data', {
    schema: {
      summary: 'Raw C-order bytes of one consistent generation',
      description: 'Honours Range (one byte range → 206), If-Range and If-None-Match; `Prefer: descriptor` adds the descriptor of these bytes (X-Pixelport-Descriptor). HEAD answers the headers only.',
      tags: ['pixels'],
      params: idParams,
      headers: dataHeaders,
      response: { 200: bytesResponse, 206: bytesResponse, 304: notModified, ...errorResponses },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const current = etagOf(store.generation(id))
    // Answer "still current" without copying anything.
    if (matchesIfNoneMatch(request.headers['if-none-match'], current)) {
      return reply.code(304).header('etag', current).send()
    }
    const snapshot = await snapshotForResponse(reply, id)
    const { descriptor, bytes } = snapshot
    const etag = etagOf(snapshot.generation)
    const size = bytes.byteLength
    let range = null
    if (ifRangeAllows(request.headers['if-range'], etag)) {
      try {
        range = parseRange(request.headers.range, size)
      } catch (err) {
        void reply.header('content-range', `bytes */${size}`)
        throw err
      }
    }
    void reply
      .header('content-type', OCTET_STREAM)
      .header('accept-ranges', 'bytes')
      .header('etag', etag)
      .header('x-pixelport-generation', String(snapshot.generation))
      .header('x-pixelport-shape', descriptor.shape.join(','))
      .header('x-pixelport-typestr', descriptor.typestr)
      .header('vary', 'Prefer')
    if (descriptor.mode !== null) void reply.header('x-pixelport-mode', descriptor.mode)
    // `Prefer: descriptor`: the descriptor of exactly these bytes, so a download is one request.
    if (prefers(request.headers.prefer, PREFER_DESCRIPTOR)) {
      const encoded = encodeDescriptorHeader(descriptor)
      if (encoded !== null) void reply.header(DESCRIPTOR_HEADER, encoded).header('preference-applied', PREFER_DESCRIPTOR)
    }
    // Snapshots are ArrayBuffer-backed Buffers, which fastify hands to the socket as they are (a view of a
    // SharedArrayBuffer it would try to serialise): no copy at send time.
    if (range === null) {
      meterDownload(request, reply, ctx.metrics, size)
      return reply.code(200).send(bytes)
    }
    meterDownload(request, reply, ctx.metrics, range.end + 1 - range.start)
    // subarray: a view of the snapshot, not a copy; the snapshot outlives the write (released on 'close').
    return reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      .send(bytes.subarray(range.start, range.end + 1))
  })

  // Overwrite all pixels with exactly byteLength raw C-order bytes; bumps the generation
  app.put<{ Params: { id: string }, Body: Readable | undefined }>('/images/:id/data', {
    schema: {
      summary: 'Overwrite all pixels',
      description: 'Exactly byteLength raw C-order bytes; commits a new generation.',
      tags: ['pixels'],
      params: idParams,
      body: { content: { [OCTET_STREAM]: { schema: binaryBody } } },
      response: { 200: descriptorSchema, ...errorResponses },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const body = request.body
    // No body at all is zero bytes: refused (PXP_ERR_BYTE_COUNT) before anything is reserved.
    const declared = isStream(body) ? declaredLength(request, options.maxImageBytes) : 0
    // Staged outside shared memory and written in one copy: a slow client never holds the image's write
    // lock, and a stalled or failed body leaves the image with its bytes and generation.
    const descriptor = await receiveUpload(ctx, request, reply, body, (uploads, source) => uploads.overwrite(source, id, { declared }))
    void reply.header('etag', etagOf(descriptor.generation))
    return descriptor
  })
}
