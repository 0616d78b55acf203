/**
 * Pictures of images over HTTP: one consistent generation, encoded on request.
 *
 * The picture is encoded from a snapshot (never from live memory a writer may change under the encoder),
 * the snapshot is released as soon as the encoder is done with it, and identical requests for the same
 * generation arriving while it is being encoded share one encode.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { ServerContext } from '../context.js'
import { encodeImage, type EncodeOptions, type Encoded } from '../formats/encode.js'
import { FORMATS, type ImageFormat } from '../formats/formats.js'
import { NotEncodable } from '../formats/raster.js'
import { meterDownload } from './meter.js'
import { etagOf, matchesIfNoneMatch } from './range.js'

export interface PictureRequest {
  id: string
  format: ImageFormat
  options: EncodeOptions
  /**
   * On a URL that also serves JSON (`Accept` negotiation), the ETag names the format too (`"7.png"`), so
   * caches never take one representation for the other. The `.png` URLs use the plain generation.
   */
  negotiated: boolean
}

interface Job {
  generation: number
  done: Promise<Encoded>
}

const services = new WeakMap<object, PictureService>()

/** The server's one picture service (so every route that encodes shares in-flight encodes). */
export function picturesOf (ctx: ServerContext): PictureService {
  let service = services.get(ctx.store)
  if (service === undefined) {
    service = new PictureService(ctx)
    services.set(ctx.store, service)
  }
  return service
}

export class PictureService {
  private readonly inflight = new Map<string, Promise<Encoded>>()

  constructor (private readonly ctx: ServerContext) {}

  /** Answer `request` with a picture (or 304). */
  async send (request: FastifyRequest, reply: FastifyReply, picture: PictureRequest): Promise<FastifyReply> {
    const { id, format } = picture
    const extension = FORMATS[format].extensions[0]
    const tag = (generation: number): string => picture.negotiated ? `"${generation}.${extension}"` : etagOf(generation)
    // Answer "still current" without copying or encoding anything.
    const current = tag(this.ctx.store.generation(id))
    if (matchesIfNoneMatch(request.headers['if-none-match'], current)) return await reply.code(304).header('etag', current).send()
    const { generation, done } = await this.encode(picture)
    const encoded = await done
    void reply
      .header('content-type', FORMATS[format].mediaType)
      .header('etag', tag(generation))
      .header('x-pixelport-generation', String(generation))
      // Pictures change with every commit: caches may keep them but must ask (If-None-Match) before use.
      .header('cache-control', 'no-cache')
      .header('content-disposition', `inline; filename="${id.split('/').pop()!}.${extension}"`)
    if (encoded.range !== null) void reply.header('x-pixelport-value-range', `${encoded.range[0]},${encoded.range[1]}`)
    meterDownload(request, reply, this.ctx.metrics, encoded.bytes.byteLength)
    return await reply.code(200).send(encoded.bytes)
  }

  /** The encode of the current generation of `id`, started now or joined. */
  private async encode ({ id, format, options }: PictureRequest): Promise<Job> {
    const snapshot = await this.ctx.snapshots.acquire(id)
    const key = [id, snapshot.generation, format, options.quality ?? '', options.lossless ?? ''].join('\n')
    const running = this.inflight.get(key)
    if (running !== undefined) {
      snapshot.release()
      return { generation: snapshot.generation, done: running }
    }
    const done = (async () => {
      try {
        // float16 has no typed array in Node 20 for the raster code to scale from (yet): refused by name.
        if (snapshot.descriptor.typestr === '<f2') throw new NotEncodable('float16 (<f2) images are not encoded as pictures; read /data')
        return await encodeImage(snapshot.descriptor, snapshot.bytes, format, options)
      } catch (err) {
        if (err instanceof NotEncodable) throw pxpError('PXP_ERR_NOT_ENCODABLE', id, format, err.message)
        throw err
      } finally {
        snapshot.release()
        this.inflight.delete(key)
      }
    })()
    this.inflight.set(key, done)
    return { generation: snapshot.generation, done }
  }
}
