/**
 * Pictures of images over HTTP: one consistent generation, encoded on request.
 *
 * The picture is encoded from a snapshot (never from live memory a writer may change under the encoder),
 * the snapshot is released as soon as the encoder is done with it, and identical requests for the same
 * generation arriving while it is being encoded share one encode. Finished encodes stay in a bounded cache
 * (picture-cache.ts): a request the cache answers copies and encodes nothing (`X-Pixelport-Cache: hit`,
 * counted in `pixelport_picture_requests_total{result}`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { pxpError } from '../../protocol/errors.js'
import type { ServerContext } from '../context.js'
import { Counter } from 'prom-client'
import { derivationKey, planDerivation, type DeriveQuery, type Derivation } from '../formats/derive.js'
import { encodeImage, type EncodeOptions, type Encoded } from '../formats/encode.js'
import { FORMATS, type ImageFormat } from '../formats/formats.js'
import { NotEncodable } from '../formats/raster.js'
import { meterDownload } from './meter.js'
import { PictureCache } from './picture-cache.js'
import { etagOf, matchesIfNoneMatch } from './range.js'

export interface PictureRequest {
  id: string
  format: ImageFormat
  options: EncodeOptions
  /** Crop and resize (validated against the image here); absent for the picture as it is. */
  derive?: DeriveQuery
  /**
   * On a URL that also serves JSON (`Accept` negotiation), the ETag names the format too (`"7.png"`), so
   * caches never take one representation for the other. The `.png` URLs use the plain generation.
   */
  negotiated: boolean
}

interface Job {
  generation: number
  done: Promise<Encoded>
  cached: boolean
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
  readonly cache = new PictureCache()
  /** Requests by how they were answered: `hit` (cache), `joined` (an encode in flight), `encoded`. */
  readonly counts = { hit: 0, joined: 0, encoded: 0 }
  private readonly counter: Counter<'result'> | null

  constructor (private readonly ctx: ServerContext) {
    this.cache.follow(ctx.store)
    const registry = ctx.metrics?.registry
    this.counter = registry === undefined
      ? null
      : new Counter({ name: 'pixelport_picture_requests_total', help: 'Picture requests by how they were answered: hit (cache), joined (an encode in flight), encoded', labelNames: ['result'], registers: [registry] })
  }

  private count (result: keyof PictureService['counts']): void {
    this.counts[result]++
    this.counter?.inc({ result })
  }

  /** Answer `request` with a picture (or 304). */
  async send (request: FastifyRequest, reply: FastifyReply, picture: PictureRequest): Promise<FastifyReply> {
    const { id, format } = picture
    const extension = FORMATS[format].extensions[0]
    const tag = (generation: number): string => picture.negotiated ? `"${generation}.${extension}"` : etagOf(generation)
    // Answer "still current" without copying or encoding anything.
    // Refused before anything else: a bad crop or size is a bad request whatever the generation.
    const descriptor = this.ctx.store.describe(id)
    const derivation = picture.derive === undefined ? null : planDerivation(picture.derive, id, descriptor.width, descriptor.height)
    const current = tag(this.ctx.store.generation(id))
    if (matchesIfNoneMatch(request.headers['if-none-match'], current)) return await reply.code(304).header('etag', current).send()
    const { generation, done, cached } = await this.encode(picture, derivation)
    const encoded = await done
    void reply
      .header('x-pixelport-cache', cached ? 'hit' : 'miss')
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
  private async encode ({ id, format, options }: PictureRequest, derivation: Derivation | null): Promise<Job> {
    const keyOf = (generation: number): string => [id, generation, format, options.quality ?? '', options.lossless ?? '', options.effort ?? '',
      derivation === null ? '' : derivationKey(derivation)].join('\n')
    // A cached picture of the current generation needs no snapshot (a copy of the whole image) at all.
    const now = this.ctx.store.generation(id)
    const hit = this.cache.get(keyOf(now))
    if (hit !== undefined) {
      this.ctx.store.touch(id)
      this.count('hit')
      return { generation: now, done: Promise.resolve(hit), cached: true }
    }
    const epoch = this.cache.epoch
    const snapshot = await this.ctx.snapshots.acquire(id)
    const key = keyOf(snapshot.generation)
    const running = this.inflight.get(key)
    if (running !== undefined) {
      snapshot.release()
      this.count('joined')
      return { generation: snapshot.generation, done: running, cached: false }
    }
    this.count('encoded')
    const done = (async () => {
      try {
        // float16 has no typed array in Node 20 for the raster code to scale from (yet): refused by name.
        if (snapshot.descriptor.typestr === '<f2') throw new NotEncodable('float16 (<f2) images are not encoded as pictures; read /data')
        const encoded = await encodeImage(snapshot.descriptor, snapshot.bytes, format, options, derivation)
        this.cache.set(key, id, snapshot.generation, encoded, epoch)
        return encoded
      } catch (err) {
        if (err instanceof NotEncodable) throw pxpError('PXP_ERR_NOT_ENCODABLE', id, format, err.message)
        throw err
      } finally {
        snapshot.release()
        this.inflight.delete(key)
      }
    })()
    this.inflight.set(key, done)
    return { generation: snapshot.generation, done, cached: false }
  }
}
