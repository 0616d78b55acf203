/**
 * The live viewer: `GET /` is the page scripts/build-viewer.mjs builds into dist/viewer/, `GET /viewer/:file`
 * its script, stylesheet and source maps.
 *
 * Every response is cross-origin isolated (COOP same-origin + COEP require-corp, CORP same-origin), so the
 * page could use SharedArrayBuffer. The page holds no data (it asks the API, with the user's token when the
 * server has tokens), so its routes are public. Files are read on request: a build made while the server
 * runs is served at once, and a server started before any build answers 404 until there is one.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { pxpError } from '../../protocol/errors.js'

export interface ViewerOptions {
  /** Directory holding the built page. Default: dist/viewer/ of this package. */
  directory?: URL
}

/** Headers that make the page cross-origin isolated, and keep its files from being embedded elsewhere. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
}

/** Same origin only: scripts, styles, the API (fetch and the WebSocket) and thumbnails as blob: URLs. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

/** Built file names: `viewer-ABC123.js`, `style-ABC123.css.map`. No dot first, no slash, nothing else. */
const FILE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)+$/

/** Asset names carry a content hash: a name never changes meaning, so browsers may keep it. */
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** dist/viewer/, seen from this file in the sources (server/http/) or in the build (dist/server/http/). */
export function viewerDirectory (): URL {
  const fromBuild = new URL('../../viewer/', import.meta.url)
  if (import.meta.url.includes('/dist/') && existsSync(new URL('index.html', fromBuild))) return fromBuild
  return new URL('../../dist/viewer/', import.meta.url)
}

export const viewerRoutes: FastifyPluginAsync<ViewerOptions> = async (app, options) => {
  const directory = options.directory ?? viewerDirectory()

  async function sendFile (reply: FastifyReply, name: string, cacheControl: string, what: string): Promise<FastifyReply> {
    const notFound = (): Error => pxpError('PXP_ERR_ROUTE_NOT_FOUND', name === 'index.html' ? `${what} (the viewer is not built: run npm run build)` : what)
    const type = TYPES[extname(name)]
    if (type === undefined || !FILE_NAME.test(name)) throw notFound()
    const body = await readFile(new URL(name, directory)).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? notFound() : err
    })
    return await reply.headers(ISOLATION_HEADERS).header('cache-control', cacheControl).type(type).send(body)
  }

  // Not part of the API: left out of the OpenAPI document.
  const config = { access: 'public' as const }
  const schema = { hide: true }

  app.get('/', { config, schema }, async (_request, reply) => {
    // Revalidated on every load, so a new build's asset names are picked up at once.
    void reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    return await sendFile(reply, 'index.html', 'no-cache', 'GET /')
  })

  app.get<{ Params: { file: string } }>('/viewer/:file', { config, schema }, async (request, reply) => {
    const { file } = request.params
    if (file === 'index.html') return await reply.redirect('/', 301)
    return await sendFile(reply, file, IMMUTABLE, `GET /viewer/${file}`)
  })
}
