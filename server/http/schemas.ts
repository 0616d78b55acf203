/**
 * JSON schemas of the HTTP API: requests are validated with them, responses serialised with them.
 *
 * Response schemas double as the API's contract, so they name every field. Objects that other parts of
 * Pixelport may grow (descriptor, stats) keep `additionalProperties: true`: fastify's serialiser drops
 * unknown properties otherwise, and a field silently missing over HTTP is worse than an undocumented one.
 */
import { Type, type TProperties } from 'typebox'
import { MAX_ID_LENGTH } from '../../protocol/ids.js'
import { MAX_NDIM } from '../../protocol/layout.js'
import {
  ArrayInterfaceSchema, DescriptorSchema, ErrorBodySchema, listRequestFields, ScopeSchema, specFields,
} from '../../protocol/wire/fields.js'
import { listPageFields } from '../../protocol/wire/server-messages.js'
import type { ResolvedOptions } from '../options.js'

const natural = { type: 'integer', minimum: 0 } as const

/** `{ code, message }`: the same schema as the WebSocket's error bodies (protocol/wire/fields.ts). */
export const errorSchema = ErrorBodySchema

/** 4xx/5xx bodies for every route: the error registry's `{ code, message }`. */
export const errorResponses = {
  '4xx': { ...errorSchema, description: 'Client error: { code, message } with a PXP_ERR_* code (README "Errors")' },
  '5xx': { ...errorSchema, description: 'Server error: { code, message } with a PXP_ERR_* code' },
} as const

export const notModified = { description: 'Not modified: the If-None-Match tag is current', type: 'null' } as const

export const arrayInterfaceSchema = ArrayInterfaceSchema

/** The descriptor: the very object the WebSocket messages use (protocol/wire/fields.ts). */
export const descriptorSchema = DescriptorSchema

/** A page of `GET /images`: the fields of the WebSocket `images` message. */
export const listSchema = Type.Object(listPageFields)

/**
 * `GET /images?scope=&limit=&cursor=`: one page of this node's images (default), or of every live node's
 * (each with `node` and `url`), in id order. The fields of the WebSocket `list` message.
 */
export const listQuery = Type.Object({ ...listRequestFields, scope: Type.Optional({ ...ScopeSchema, default: 'local' }) })

/** `:id` of every per-image route (decoded: `cam1%2Fframe` arrives as `cam1/frame`). */
export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 3 * MAX_ID_LENGTH } },
} as const

/**
 * Request schemas that depend on the configured limits: the image spec of protocol/wire/fields.ts with
 * width and height bounded by maxDimension.
 */
export function requestSchemas (options: ResolvedOptions) {
  const dimension = Type.Integer({ minimum: 1, maximum: options.maxDimension })
  const spec = specFields(dimension)
  // Length and syntax are checked by the id rules themselves, so every bad id is PXP_ERR_BAD_ID.
  const id = Type.Optional(Type.String({ description: `1-${MAX_ID_LENGTH} characters: "/"-separated segments of A-Z a-z 0-9 . _ -, none starting with "."` }))

  /** JSON body of POST /images: `{ width, height, mode }` or `{ shape, typestr }`. */
  const createBody = Type.Object({
    width: spec.width,
    height: spec.height,
    mode: spec.mode,
    shape: spec.shape,
    typestr: spec.typestr,
    frames: spec.frames,
    id,
    layout: spec.layout,
    readonly: spec.readonly,
  }, { additionalProperties: false })

  /** Query of POST /images for raw uploads: the same fields, `shape` as a comma list. */
  const createQuery = Type.Object({
    ...createBody.properties,
    shape: Type.Optional(Type.String({ pattern: `^[0-9]{1,10}(,[0-9]{1,10}){0,${MAX_NDIM - 1}}$`, description: 'e.g. 480,640,3' })),
  }, { additionalProperties: false })

  const viewBody = Type.Object({
    x: Type.Integer({ minimum: 0, maximum: options.maxDimension }),
    y: Type.Integer({ minimum: 0, maximum: options.maxDimension }),
    width: dimension,
    height: dimension,
    id,
    readonly: spec.readonly,
  }, { additionalProperties: false })

  return { createBody, createQuery, viewBody }
}

/** Request headers of a route: `If-None-Match` on every conditional GET, plus the route's own. */
function headers<P extends TProperties> (extra: P) {
  return Type.Object({ 'if-none-match': Type.Optional(Type.String()), ...extra })
}

export const conditionalHeaders = headers({})

export const describeHeaders = headers({
  accept: Type.Optional(Type.String({ description: 'application/json (default), or image/png, image/jpeg, image/webp, image/tiff for a picture' })),
})

export const dataHeaders = headers({
  range: Type.Optional(Type.String({ description: 'bytes=a-b, bytes=a- or bytes=-n' })),
  'if-range': Type.Optional(Type.String()),
  prefer: Type.Optional(Type.String({ description: '`descriptor`: the descriptor of these bytes in X-Pixelport-Descriptor (base64url JSON)' })),
})

/** Raw C-order bytes. No type: the handler gets the request stream, which only it reads. */
export const binaryBody = {
  description: 'Raw C-order bytes (application/octet-stream), streamed; the byte count must match exactly',
} as const

/** Response content of a picture in each of `mediaTypes` (for the OpenAPI document; Buffers bypass serialisers). */
export function pictureContent (mediaTypes: readonly string[]): Record<string, { schema: { type: 'string', format: 'binary' } }> {
  return Object.fromEntries(mediaTypes.map((type) => [type, { schema: { type: 'string', format: 'binary' } }]))
}

/** A PNG, JPEG, WebP or TIFF file, streamed to the decoder. No type: the handler reads the stream. */
export const pictureBody = {
  description: 'A picture file, decoded into an image of the mode it implies (docs/http.md); at most maxImageBytes',
} as const

const count = natural

export const statsSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    provider: { type: 'string' },
    blockSize: count,
    capacity: count,
    blocks: count,
    dedicatedBlocks: count,
    reserved: count,
    used: count,
    free: count,
    largestFreeRun: count,
    images: count,
    views: count,
    maxImages: count,
    retired: count,
    snapshots: {
      type: 'object',
      additionalProperties: true,
      properties: { snapshots: count, bytes: count, maxBytes: count, shared: count, copies: count },
    },
  },
} as const

export const healthSchema = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean' }, images: count },
} as const
