/**
 * `GET /images/:id.png` (and `.jpeg`/`.jpg`, `.webp`, `.tiff`/`.tif`): a picture of one consistent
 * generation, encoded on request.
 *
 * The router matches the suffix routes before `/images/:id`, so `/images/cam1%2Fframe.png` is the PNG of
 * `cam1/frame`. An id may itself end in `.png`: when `x` is not an image but `x.png` is, `/images/x.png`
 * describes `x.png` (as `/images/:id` would) instead of answering 404 — to a caller who may read `x.png`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { mayAccessImage } from '../auth/image-access.js'
import type { ServerContext } from '../context.js'
import type { DeriveQuery } from '../formats/derive.js'
import type { EncodeOptions } from '../formats/encode.js'
import { FORMATS } from '../formats/formats.js'
import { pictureQuery } from './picture-query.js'
import { picturesOf } from './pictures.js'
import { etagOf, matchesIfNoneMatch } from './range.js'
import { conditionalHeaders, errorResponses, idParams, notModified, pictureContent } from './schemas.js'

export const formatRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  const pictures = picturesOf(ctx)

  /** The descriptor of an image whose own id ends in the suffix, as GET /images/:id answers it. */
  async function describeExact (request: FastifyRequest<{ Headers: { 'if-none-match'?: string } }>, reply: FastifyReply, id: string): Promise<FastifyReply> {
    const descriptor = ctx.store.describe(id)
    const etag = etagOf(descriptor.generation)
    void reply.header('etag', etag)
    if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) return await reply.code(304).send()
    return await reply.type('application/json; charset=utf-8').send(JSON.stringify(descriptor))
  }

  for (const format of Object.values(FORMATS)) {
    for (const [i, extension] of format.extensions.entries()) {
      app.get<{ Params: { id: string }, Querystring: EncodeOptions & DeriveQuery, Headers: { 'if-none-match'?: string } }>(`/images/:id.${extension}`, {
        schema: {
          summary: `The image as ${format.name.toUpperCase()}`,
          description: 'One consistent generation, encoded on request (docs/http.md says how each mode and dtype converts). ' +
            'Optionally cropped (x, y, w, h; first) and resized (width, height, fit); cached per generation.' +
            (format.extensions.length > 1 ? ` Also at .${format.extensions[1]}.` : ''),
          tags: ['pictures'],
          // Aliases (.jpg, .tif) work but would only repeat the same entry in the API document.
          hide: i > 0,
          params: idParams,
          querystring: pictureQuery(format.name),
          headers: conditionalHeaders,
          response: { 200: { description: `${format.name.toUpperCase()} picture`, content: pictureContent([format.mediaType]) }, 304: notModified, ...errorResponses },
        },
      }, async (request, reply) => {
        const { id } = request.params
        const exact = `${id}.${extension}`
        // The fallback names another image than the one the auth hooks checked: only a caller who may read
        // `x.png` itself learns it exists; anyone else gets the same 404 for `x` as if it did not.
        if (!ctx.store.has(id) && ctx.store.has(exact) && mayAccessImage(request.principal, 'read', exact, ctx.store)) {
          return await describeExact(request, reply, exact)
        }
        const { width, height, fit, x, y, w, h, ...options } = request.query
        return await pictures.send(request, reply, { id, format: format.name, options, derive: { width, height, fit, x, y, w, h }, negotiated: false })
      })
    }
  }
}
