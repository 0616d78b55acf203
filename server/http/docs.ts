/**
 * The OpenAPI document (`/docs/json`, `/docs/yaml`) generated from the route schemas, and Swagger UI at
 * `/docs`.
 *
 * Registered on the root instance before any route: @fastify/swagger collects routes as they are added,
 * from every plugin. Importing it also teaches fastify's types the OpenAPI keys routes use in `schema`
 * (`summary`, `description`, `tags`, `hide`).
 */
import { existsSync, readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

/** The package version, from the nearest package.json above this file (source and build differ in depth). */
function packageVersion (): string {
  for (let dir = new URL('./', import.meta.url); dir.pathname !== '/'; dir = new URL('../', dir)) {
    const file = new URL('package.json', dir)
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string }
    if (pkg.name === 'pixelport' && typeof pkg.version === 'string') return pkg.version
  }
  return '0.0.0'
}

/**
 * The WebSocket endpoint, which @fastify/websocket always hides from the document: described here so the
 * document lists every route.
 */
const WEBSOCKET_PATH = {
  get: {
    summary: 'WebSocket upgrade: the msgpack protocol of docs/protocol.md',
    description: 'Send `Upgrade: websocket`; authenticate with a token in the first `hello` message (no token on ' +
      'the upgrade itself). Binary frames carry msgpack messages: see docs/protocol.md.',
    tags: ['websocket'],
    responses: {
      101: { description: 'Switching protocols' },
      404: { description: 'Not a WebSocket upgrade' },
      429: { description: 'Too many connections from this client address or token' },
    },
  },
}

/** Collect the routes for the OpenAPI document. Call before registering any route. */
export async function collectApiDocs (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
      const doc = documentObject.openapiObject
      return { ...doc, paths: { ...doc.paths, '/ws': WEBSOCKET_PATH } }
    },
    openapi: {
      info: {
        title: 'Pixelport',
        version: packageVersion(),
        description: 'Shared-memory images with numpy array-interface descriptors. Errors are `{ code, message }` with a ' +
          'stable PXP_ERR_* code; ids containing "/" travel percent-encoded in paths.',
      },
      tags: [
        { name: 'images', description: 'Create, list, describe and delete images' },
        { name: 'pixels', description: 'Raw C-order bytes of one consistent generation' },
        { name: 'pictures', description: 'PNG, JPEG, WebP and TIFF, encoded on request' },
        { name: 'views', description: 'Zero-copy regions of an image' },
        { name: 'operations', description: 'Health, readiness, statistics and Prometheus metrics' },
        { name: 'cluster', description: 'Membership of a Redis cluster (only with --cluster)' },
        { name: 'shm', description: 'Shared memory (/dev/shm) for other processes on the same host' },
        { name: 'websocket', description: 'The msgpack WebSocket protocol (docs/protocol.md): upgrade here' },
      ],
      // Required when the server has tokens (`--token`); without tokens, only loopback may connect.
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })
}

/** Add `/docs` (UI), `/docs/json` and `/docs/yaml` to `app`. */
export async function serveApiDocs (app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, { routePrefix: '/docs' })
}
