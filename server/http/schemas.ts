/**
 * JSON schemas of the HTTP API: requests are validated with them, responses serialised with them.
 *
 * Response schemas double as the API's contract, so they name every field. Objects that other parts of
 * Pixelport may grow (descriptor, stats) keep `additionalProperties: true`: fastify's serialiser drops
 * unknown properties otherwise, and a field silently missing over HTTP is worse than an undocumented one.
 */
import { MAX_FRAMES, MAX_NDIM } from '../../protocol/layout.js'
import { MAX_ID_LENGTH } from '../../protocol/ids.js'
import { MODE_NAMES } from '../../protocol/modes.js'
import type { ResolvedOptions } from '../options.js'
import { MAX_CURSOR_LENGTH } from '../listing/cursor.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../listing/pages.js'

const integer = { type: 'integer' } as const
const natural = { type: 'integer', minimum: 0 } as const

export const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', description: 'Stable PXP_ERR_* code' },
    message: { type: 'string' },
    details: {},
  },
} as const

/** 4xx/5xx bodies for every route: the error registry's `{ code, message }`. */
export const errorResponses = {
  '4xx': { ...errorSchema, description: 'Client error: { code, message } with a PXP_ERR_* code (README "Errors")' },
  '5xx': { ...errorSchema, description: 'Server error: { code, message } with a PXP_ERR_* code' },
} as const

export const notModified = { description: 'Not modified: the If-None-Match tag is current', type: 'null' } as const

export const arrayInterfaceSchema = {
  type: 'object',
  description: "numpy's array interface (version 3); fill `data` with the bytes and call numpy.asarray",
  additionalProperties: true,
  required: ['version', 'shape', 'typestr', 'descr', 'strides', 'data'],
  properties: {
    version: integer,
    shape: { type: 'array', items: natural },
    typestr: { type: 'string' },
    descr: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
    strides: { type: ['array', 'null'], items: integer, description: 'null when C-contiguous, else byte strides' },
    offset: { ...natural, description: 'Byte offset into the bytes of `base`; present only when non-zero' },
    data: { type: 'null' },
  },
} as const

const locationSchema = {
  anyOf: [
    {
      type: 'object',
      additionalProperties: true,
      required: ['kind', 'block', 'byteOffset'],
      properties: { kind: { type: 'string', const: 'block' }, block: integer, byteOffset: natural },
    },
    {
      type: 'object',
      additionalProperties: true,
      required: ['kind', 'rowBytes', 'segments'],
      properties: {
        kind: { type: 'string', const: 'lines' },
        rowBytes: natural,
        segments: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: true,
            required: ['block', 'byteOffset', 'rows'],
            properties: { block: integer, byteOffset: natural, rows: natural },
          },
        },
      },
    },
  ],
} as const

const viewInfoSchema = {
  type: ['object', 'null'],
  additionalProperties: true,
  required: ['parent', 'x', 'y', 'width', 'height'],
  properties: { parent: { type: 'string' }, x: natural, y: natural, width: natural, height: natural },
} as const

export const descriptorSchema = {
  type: 'object',
  additionalProperties: true,
  required: [
    'id', 'mode', 'width', 'height', 'channels', 'typestr', 'shape', 'byteLength', 'generation', 'readonly',
    'layout', 'copied', 'base', 'view', 'location', '__array_interface__',
  ],
  properties: {
    id: { type: 'string' },
    mode: { type: ['string', 'null'] },
    width: natural,
    height: natural,
    channels: natural,
    typestr: { type: 'string' },
    shape: { type: 'array', items: natural },
    byteLength: natural,
    generation: natural,
    readonly: { type: 'boolean' },
    layout: { type: 'string', enum: ['block', 'lines'] },
    copied: { type: 'boolean' },
    base: { type: 'string', description: 'The image whose bytes __array_interface__ strides and offset refer to' },
    view: viewInfoSchema,
    location: locationSchema,
    __array_interface__: arrayInterfaceSchema,
  },
} as const

export const listSchema = {
  type: 'object',
  required: ['images', 'next'],
  properties: {
    images: { type: 'array', items: descriptorSchema },
    next: { type: ['string', 'null'], description: 'Cursor of the next page (pass it as `cursor`), or null when this page is the last' },
    partial: { type: 'boolean', description: 'scope=cluster only: true when Redis is unreachable and only this node\'s images are listed' },
    error: { ...errorSchema, description: 'scope=cluster with partial: why (PXP_ERR_CLUSTER_UNAVAILABLE)' },
  },
} as const

/**
 * `GET /images?scope=&limit=&cursor=`: one page of this node's images (default), or of every live node's
 * (each with `node` and `url`), in id order.
 */
export const listQuery = {
  type: 'object',
  properties: {
    scope: { type: 'string', enum: ['local', 'cluster'], default: 'local' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, description: `Descriptors per page (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}; more is refused)` },
    cursor: { type: 'string', minLength: 1, maxLength: MAX_CURSOR_LENGTH, description: 'The `next` of the previous page' },
  },
} as const

/** `:id` of every per-image route (decoded: `cam1%2Fframe` arrives as `cam1/frame`). */
export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 3 * MAX_ID_LENGTH } },
} as const

/** Request schemas that depend on the configured limits. */
export function requestSchemas (options: ResolvedOptions) {
  const dimension = { type: 'integer', minimum: 1, maximum: options.maxDimension } as const
  const common = {
    // Length and syntax are checked by the id rules themselves, so every bad id is PXP_ERR_BAD_ID.
    id: { type: 'string', description: `1-${MAX_ID_LENGTH} characters: "/"-separated segments of A-Z a-z 0-9 . _ -, none starting with "."` },
    layout: { type: 'string', enum: ['block', 'lines'] },
    readonly: { type: 'boolean' },
  } as const
  const frames = { type: 'integer', minimum: 1, maximum: MAX_FRAMES, description: 'Frame buffers for loan/publish writers' } as const
  const mode = { type: 'string', minLength: 1, maxLength: 16, description: `One of ${MODE_NAMES.join(' ')}` } as const
  const typestr = { type: 'string', minLength: 2, maxLength: 4, description: 'numpy typestr, e.g. |u1 <u2 >f4' } as const

  /** JSON body of POST /images: `{ width, height, mode }` or `{ shape, typestr }`. */
  const createBody = {
    type: 'object',
    additionalProperties: false,
    properties: {
      width: dimension,
      height: dimension,
      mode,
      // 1-D shapes may exceed maxDimension (up to maxImageBytes / itemsize): the spec checks the limits.
      shape: { type: 'array', minItems: 1, maxItems: MAX_NDIM, items: { type: 'integer', minimum: 1, maximum: 2 ** 32 - 1 } },
      typestr,
      frames,
      ...common,
    },
  } as const

  /** Query of POST /images for raw uploads: the same fields, `shape` as a comma list. */
  const createQuery = {
    type: 'object',
    additionalProperties: false,
    properties: {
      width: dimension,
      height: dimension,
      mode,
      shape: { type: 'string', pattern: `^[0-9]{1,10}(,[0-9]{1,10}){0,${MAX_NDIM - 1}}$`, description: 'e.g. 480,640,3' },
      typestr,
      frames,
      ...common,
    },
  } as const

  const viewBody = {
    type: 'object',
    additionalProperties: false,
    required: ['x', 'y', 'width', 'height'],
    properties: {
      x: { type: 'integer', minimum: 0, maximum: options.maxDimension },
      y: { type: 'integer', minimum: 0, maximum: options.maxDimension },
      width: dimension,
      height: dimension,
      id: common.id,
      readonly: common.readonly,
    },
  } as const

  return { createBody, createQuery, viewBody }
}

export const conditionalHeaders = {
  type: 'object',
  properties: {
    'if-none-match': { type: 'string' },
  },
} as const

export const describeHeaders = {
  type: 'object',
  properties: {
    'if-none-match': { type: 'string' },
    accept: { type: 'string', description: 'application/json (default), or image/png, image/jpeg, image/webp, image/tiff for a picture' },
  },
} as const

export const dataHeaders = {
  type: 'object',
  properties: {
    'if-none-match': { type: 'string' },
    range: { type: 'string', description: 'bytes=a-b, bytes=a- or bytes=-n' },
    'if-range': { type: 'string' },
  },
} as const

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
