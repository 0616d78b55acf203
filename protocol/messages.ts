/**
 * The WebSocket protocol: every message type, its JSON schema, and the wire encoding rules.
 *
 * Messages are standard MessagePack maps (no msgpackr records, structures or extensions), so a client in
 * any language with an ordinary MessagePack library can speak it; docs/protocol.md is the prose version
 * of this file. The schemas are plain objects so this module stays light for browser bundles: the server
 * compiles them (with ajv) and tests validate what the server sends against the server-message schemas.
 *
 * One custom keyword is used: `binary: true` means "a MessagePack `bin`" (a Uint8Array once decoded).
 */
import type { ChangeType, ImageDescriptor } from './descriptor.js'
import type { ErrorCode } from './errors.js'
import { ID_PATTERN, MAX_ID_LENGTH } from './ids.js'
import { MAX_FRAMES, MAX_NDIM } from './layout.js'
import type { Layout } from './spec.js'

/** Bumped on any incompatible change to the messages below. */
export const PROTOCOL_VERSION = 1

/** A client-chosen request id, echoed verbatim in every reply: an unsigned integer or a short string. */
export type RequestId = number | string

export interface Region {
  x: number
  y: number
  width: number
  height: number
}

/** The fields of HTTP `POST /images`: `{ width, height, mode }` or `{ shape, typestr }`. */
export interface SpecFields {
  width?: number
  height?: number
  mode?: string
  shape?: number[]
  typestr?: string
  layout?: Layout
  readonly?: boolean
  /** Frame buffers for loan/publish writers (worker threads). Default 1. */
  frames?: number
}

export type Policy = 'latest' | 'all'
/** The wire name of the store's ChangeType. */
export type EventType = ChangeType

// ---- client → server ------------------------------------------------------------------------------

export interface HelloMessage {
  op: 'hello'
  req: RequestId
  protocol: number
  client?: string
  /**
   * Ask for every `chunk` message to be sent as a fragmented WebSocket message whose frames carry at most
   * this many bytes (at least MIN_FRAGMENT_SIZE). The messages are the same; a client whose WebSocket
   * library hands out the fragments as they arrived (Node's `ws`, binaryType 'fragments') can then copy
   * each payload once, straight into its frame buffer.
   */
  fragmentSize?: number
  /**
   * The bearer token, when the server requires one and the upgrade request carried no
   * `Authorization: Bearer` header (browsers cannot set one). Must be in the first message.
   */
  token?: string
}
/**
 * Which images: `local` (default) this node's; `cluster` every live node's (each descriptor then carries
 * `node` and `url`, the owner's id and base URL). A server that is not in a cluster treats both alike.
 */
export type Scope = 'local' | 'cluster'
/**
 * One page of images, in id order: at most `limit` (default LIST_DEFAULT_LIMIT, at most LIST_MAX_LIMIT),
 * starting after `cursor` (the previous page's `next`).
 */
export interface ListMessage { op: 'list', req: RequestId, scope?: Scope, limit?: number, cursor?: string }

/** Descriptors per `list` page when the request names no `limit`. */
export const LIST_DEFAULT_LIMIT = 1000
/** Largest `limit` of a `list` page; a larger one is refused (PXP_ERR_VALIDATION), not clamped. */
export const LIST_MAX_LIMIT = 10000
/** Longest `cursor` a server accepts. */
export const LIST_MAX_CURSOR_LENGTH = 512
export interface DescribeMessage { op: 'describe', req: RequestId, id: string }
export interface CreateMessage extends SpecFields { op: 'create', req: RequestId, id?: string }
/**
 * Create or overwrite an image from bytes. With `data` the upload is complete in this message; without
 * it, `byteLength` is required and `chunk` messages with the same `req` follow, then an `end`.
 */
export interface PutMessage extends SpecFields { op: 'put', req: RequestId, id?: string, byteLength?: number, data?: Uint8Array }
/** One piece of an upload: `offset` is the number of bytes sent before it (chunks come in order). */
export interface UploadChunkMessage { op: 'chunk', req: RequestId, offset: number, data: Uint8Array }
export interface UploadEndMessage { op: 'end', req: RequestId }
export interface GetMessage { op: 'get', req: RequestId, id: string, generation?: number, region?: Region }
export interface DeleteMessage { op: 'delete', req: RequestId, id: string }
export interface SubscribeMessage {
  op: 'subscribe'
  req: RequestId
  /** Only these images (they need not exist yet); all images when absent. */
  ids?: string[]
  /** Slow-consumer policy. Default 'latest'. */
  policy?: Policy
  /** Follow every `created`/`updated` event with the frame of that generation. Default false. */
  data?: boolean
  /** Policy 'all': events held for this subscriber before it is disconnected. Default: server's defaultQueue. */
  queue?: number
  /** `cluster`: also events of images other nodes own (without frames, even with `data: true`). Default 'local'. */
  scope?: Scope
}
export interface UnsubscribeMessage { op: 'unsubscribe', req: RequestId, sub: number }
/** Abort the get or put in flight under `req`; it ends with an `error` PXP_ERR_ABORTED. */
export interface CancelMessage { op: 'cancel', req: RequestId }

export type ClientMessage =
  | HelloMessage | ListMessage | DescribeMessage | CreateMessage | PutMessage | UploadChunkMessage
  | UploadEndMessage | GetMessage | DeleteMessage | SubscribeMessage | UnsubscribeMessage | CancelMessage

export type ClientOp = ClientMessage['op']

// ---- server → client ------------------------------------------------------------------------------

/** Limits a client must respect; every one is enforced with a named error. */
export interface ServerLimits {
  /** Largest message the server accepts, in bytes (larger: connection closed with 1009). */
  maxMessageBytes: number
  /** Payload bytes per `chunk` message the server sends. */
  chunkSize: number
  /** Bytes the server queues on a connection before it waits for the client to read. */
  highWaterMark: number
  /** Largest image in bytes. */
  maxImageBytes: number
  /** Subscriptions per connection. */
  maxSubscriptions: number
  /** `get` requests per connection that are queued or streaming. */
  maxStreams: number
  /** Chunked `put` uploads per connection in progress at once. */
  maxUploads: number
  /** Largest `queue` a subscription may ask for. */
  maxQueue: number
  /** `queue` of a subscription that asks for none. */
  defaultQueue: number
}

export interface WelcomeMessage {
  op: 'welcome'
  req: RequestId
  protocol: number
  server: string
  limits: ServerLimits
  /** The WebSocket frame size chunk messages will be split into; 0: one frame per message. */
  fragmentSize: number
}
export interface ImagesMessage {
  op: 'images'
  req: RequestId
  images: ImageDescriptor[]
  /** The `cursor` of the next page, or null when this page is the last. */
  next: string | null
  /** `list { scope: 'cluster' }` only: true when the cluster catalog was unreachable and only this node's images are listed. */
  partial?: boolean
  /** With `partial`: why (PXP_ERR_CLUSTER_UNAVAILABLE). */
  error?: { code: string, message: string }
}
/** Reply to describe, create and put. */
export interface DescriptorMessage { op: 'descriptor', req: RequestId, descriptor: ImageDescriptor }
export interface DeletedMessage { op: 'deleted', req: RequestId, id: string }
export interface SubscribedMessage { op: 'subscribed', req: RequestId, sub: number }
export interface UnsubscribedMessage { op: 'unsubscribed', req: RequestId, sub: number }
/**
 * Start of a stream of pixels: `chunks` chunk messages with this `stream` follow, then an `end`.
 * `req` is set for a get, `sub` for a subscription's frame.
 */
export interface FrameMessage {
  op: 'frame'
  req?: RequestId
  sub?: number
  stream: number
  /** The image, with `generation` set to the generation these bytes are. */
  descriptor: ImageDescriptor
  generation: number
  /** The rectangle sent, or null for the whole image. */
  region: Region | null
  /** Shape of the bytes sent (the region's when there is one), C order. */
  shape: number[]
  typestr: string
  byteLength: number
  chunks: number
}
export interface ChunkMessage { op: 'chunk', stream: number, offset: number, data: Uint8Array }
export interface EndMessage { op: 'end', stream: number, req?: RequestId, sub?: number, byteLength: number }
export interface EventMessage {
  op: 'event'
  sub: number
  type: EventType
  id: string
  generation: number
  descriptor: ImageDescriptor
  /** Policy 'latest': updates of this image conflated into this one and never sent. Always 0 for 'all'. */
  skipped: number
}
export interface ErrorMessage {
  op: 'error'
  /** The request that failed; null for a message that could not be attributed to one. */
  req: RequestId | null
  code: ErrorCode
  message: string
  /** Set when the error ends a stream (a get) or a subscription. */
  stream?: number
  sub?: number
}

export type ServerMessage =
  | WelcomeMessage | ImagesMessage | DescriptorMessage | DeletedMessage | SubscribedMessage | UnsubscribedMessage
  | FrameMessage | ChunkMessage | EndMessage | EventMessage | ErrorMessage

export type ServerOp = ServerMessage['op']

// ---- JSON schemas ---------------------------------------------------------------------------------

export type JsonSchema = Record<string, unknown>

const UINT32_MAX = 0xffffffff

const reqSchema = {
  anyOf: [
    { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    { type: 'string', minLength: 1, maxLength: 64 },
  ],
} as const
const idSchema = { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH, pattern: ID_PATTERN } as const
const uint = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const
const uint32 = { type: 'integer', minimum: 0, maximum: UINT32_MAX } as const
const positive = { type: 'integer', minimum: 1, maximum: UINT32_MAX } as const
const bin = { binary: true } as const

const specProperties = {
  width: positive,
  height: positive,
  mode: { type: 'string', minLength: 1, maxLength: 16 },
  shape: { type: 'array', minItems: 1, maxItems: MAX_NDIM, items: positive },
  typestr: { type: 'string', minLength: 2, maxLength: 4 },
  layout: { enum: ['block', 'lines'] },
  readonly: { type: 'boolean' },
  frames: { type: 'integer', minimum: 1, maximum: MAX_FRAMES },
} as const

function message (op: string, properties: Record<string, unknown>, required: string[] = []): JsonSchema {
  return {
    type: 'object',
    properties: { op: { const: op }, ...properties },
    required: ['op', ...required],
    additionalProperties: false,
  }
}

export const regionSchema: JsonSchema = {
  type: 'object',
  properties: { x: uint32, y: uint32, width: positive, height: positive },
  required: ['x', 'y', 'width', 'height'],
  additionalProperties: false,
}

/** Schemas of every message a client may send, by op. */
export const CLIENT_MESSAGE_SCHEMAS: Readonly<Record<ClientOp, JsonSchema>> = {
  hello: message('hello', { req: reqSchema, protocol: uint32, client: { type: 'string', maxLength: 256 }, fragmentSize: { type: 'integer', minimum: 1024, maximum: UINT32_MAX }, token: { type: 'string', minLength: 1, maxLength: 512 } }, ['req', 'protocol']),
  list: message('list', {
    req: reqSchema,
    scope: { enum: ['local', 'cluster'] },
    limit: { type: 'integer', minimum: 1, maximum: LIST_MAX_LIMIT },
    cursor: { type: 'string', minLength: 1, maxLength: LIST_MAX_CURSOR_LENGTH },
  }, ['req']),
  describe: message('describe', { req: reqSchema, id: idSchema }, ['req', 'id']),
  create: message('create', { req: reqSchema, id: idSchema, ...specProperties }, ['req']),
  put: message('put', { req: reqSchema, id: idSchema, ...specProperties, byteLength: positive, data: bin }, ['req']),
  chunk: message('chunk', { req: reqSchema, offset: uint, data: bin }, ['req', 'offset', 'data']),
  end: message('end', { req: reqSchema }, ['req']),
  get: message('get', { req: reqSchema, id: idSchema, generation: uint32, region: regionSchema }, ['req', 'id']),
  delete: message('delete', { req: reqSchema, id: idSchema }, ['req', 'id']),
  subscribe: message('subscribe', {
    req: reqSchema,
    ids: { type: 'array', minItems: 1, maxItems: 1024, items: idSchema },
    policy: { enum: ['latest', 'all'] },
    data: { type: 'boolean' },
    queue: positive,
    scope: { enum: ['local', 'cluster'] },
  }, ['req']),
  unsubscribe: message('unsubscribe', { req: reqSchema, sub: uint32 }, ['req', 'sub']),
  cancel: message('cancel', { req: reqSchema }, ['req']),
}

export const CLIENT_OPS = Object.keys(CLIENT_MESSAGE_SCHEMAS) as ClientOp[]

/** The descriptor as it travels: checked for its fields, not every nested detail. */
export const descriptorSchema: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    mode: { type: ['string', 'null'] },
    width: uint,
    height: uint,
    channels: uint,
    typestr: { type: 'string' },
    shape: { type: 'array', items: uint },
    byteLength: uint,
    generation: uint32,
    readonly: { type: 'boolean' },
    layout: { enum: ['block', 'lines'] },
    copied: { type: 'boolean' },
    base: { type: 'string' },
    view: { type: ['object', 'null'] },
    location: { type: 'object' },
    __array_interface__: {
      type: 'object',
      properties: {
        version: { const: 3 },
        shape: { type: 'array', items: uint },
        typestr: { type: 'string' },
        descr: { type: 'array' },
        strides: { anyOf: [{ type: 'array', items: { type: 'integer' } }, { type: 'null' }] },
        offset: uint,
        data: { type: 'null' },
      },
      required: ['version', 'shape', 'typestr', 'descr', 'strides', 'data'],
    },
  },
  required: ['id', 'mode', 'width', 'height', 'channels', 'typestr', 'shape', 'byteLength', 'generation', 'readonly',
    'layout', 'copied', 'base', 'view', 'location', '__array_interface__'],
}

const limitsSchema: JsonSchema = {
  type: 'object',
  properties: {
    maxMessageBytes: positive,
    chunkSize: positive,
    highWaterMark: positive,
    maxImageBytes: { type: 'integer', minimum: 1 },
    maxSubscriptions: positive,
    maxStreams: positive,
    maxUploads: positive,
    maxQueue: positive,
    defaultQueue: positive,
  },
  required: ['maxMessageBytes', 'chunkSize', 'highWaterMark', 'maxImageBytes', 'maxSubscriptions', 'maxStreams',
    'maxUploads', 'maxQueue', 'defaultQueue'],
  additionalProperties: false,
}

/** Schemas of every message the server sends, by op (for clients and tests). */
export const SERVER_MESSAGE_SCHEMAS: Readonly<Record<ServerOp, JsonSchema>> = {
  welcome: message('welcome', { req: reqSchema, protocol: uint32, server: { type: 'string' }, limits: limitsSchema, fragmentSize: uint32 }, ['req', 'protocol', 'server', 'limits', 'fragmentSize']),
  images: message('images', {
    req: reqSchema,
    images: { type: 'array', items: descriptorSchema },
    next: { type: ['string', 'null'] },
    partial: { type: 'boolean' },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
  }, ['req', 'images', 'next']),
  descriptor: message('descriptor', { req: reqSchema, descriptor: descriptorSchema }, ['req', 'descriptor']),
  deleted: message('deleted', { req: reqSchema, id: idSchema }, ['req', 'id']),
  subscribed: message('subscribed', { req: reqSchema, sub: uint32 }, ['req', 'sub']),
  unsubscribed: message('unsubscribed', { req: reqSchema, sub: uint32 }, ['req', 'sub']),
  frame: message('frame', {
    req: reqSchema,
    sub: uint32,
    stream: uint32,
    descriptor: descriptorSchema,
    generation: uint32,
    region: { anyOf: [regionSchema, { type: 'null' }] },
    shape: { type: 'array', minItems: 1, maxItems: MAX_NDIM, items: positive },
    typestr: { type: 'string' },
    byteLength: positive,
    chunks: positive,
  }, ['stream', 'descriptor', 'generation', 'region', 'shape', 'typestr', 'byteLength', 'chunks']),
  chunk: message('chunk', { stream: uint32, offset: uint, data: bin }, ['stream', 'offset', 'data']),
  end: message('end', { stream: uint32, req: reqSchema, sub: uint32, byteLength: positive }, ['stream', 'byteLength']),
  event: message('event', {
    sub: uint32,
    type: { enum: ['created', 'updated', 'deleted'] },
    id: idSchema,
    generation: uint32,
    descriptor: descriptorSchema,
    skipped: uint,
  }, ['sub', 'type', 'id', 'generation', 'descriptor', 'skipped']),
  error: message('error', {
    req: { anyOf: [reqSchema, { type: 'null' }] },
    code: { type: 'string', pattern: '^PXP_ERR_[A-Z_]+$' },
    message: { type: 'string' },
    stream: uint32,
    sub: uint32,
  }, ['req', 'code', 'message']),
}

// ---- wire encoding --------------------------------------------------------------------------------

/**
 * msgpackr options that produce and accept standard MessagePack only: no records/structures, no
 * bundled strings, no msgpackr extension types, `undefined` as nil, maps as plain objects, 64-bit
 * integers decoded as numbers. Both Packr and Unpackr take this object.
 */
export const WIRE_OPTIONS = Object.freeze({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  int64AsType: 'number',
  useTimestamp32: false,
} as const)

/**
 * Length of the header the server writes in front of every chunk payload. It is a multiple of 8, so a
 * payload that starts a message buffer (as each large WebSocket message does) is aligned for any dtype.
 */
export const CHUNK_HEAD_BYTES = 48

// fixstr-encoded keys and values of the fixed chunk header, in order.
const CHUNK_PREFIX = Uint8Array.from([
  0x84, // fixmap, 4 entries
  0xa2, 0x6f, 0x70, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, // "op": "chunk"
  0xa6, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, // "stream"
])
const OFFSET_KEY = Uint8Array.from([0xa6, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74]) // "offset"
const DATA_KEY = Uint8Array.from([0xa4, 0x64, 0x61, 0x74, 0x61]) // "data"

/**
 * The MessagePack bytes of `{ op: 'chunk', stream, offset, data }` up to and including the `bin 32`
 * length prefix of `data`: send these, then the payload, as one message. Fixed-width integers (uint 32
 * for stream, uint 64 for offset) keep the header exactly CHUNK_HEAD_BYTES long; MessagePack allows any
 * width, so every decoder reads it.
 */
export function writeChunkHead (target: Uint8Array, at: number, stream: number, offset: number, payloadLength: number): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength)
  let p = at
  target.set(CHUNK_PREFIX, p)
  p += CHUNK_PREFIX.length
  target[p++] = 0xce
  view.setUint32(p, stream)
  p += 4
  target.set(OFFSET_KEY, p)
  p += OFFSET_KEY.length
  target[p++] = 0xcf
  view.setUint32(p, Math.floor(offset / 0x100000000))
  view.setUint32(p + 4, offset >>> 0)
  p += 8
  target.set(DATA_KEY, p)
  p += DATA_KEY.length
  target[p++] = 0xc6
  view.setUint32(p, payloadLength)
  p += 4
  return p - at
}

const encoder = new TextEncoder()

/**
 * The MessagePack bytes of a small map of string and unsigned-integer fields followed by a `data` key
 * and the `bin` header for `binLength` bytes: prepend to a payload to get the whole message without
 * packing the payload through a generic encoder.
 */
export function encodeBinHead (fields: Readonly<Record<string, string | number>>, binLength: number): Uint8Array {
  const parts: number[] = []
  const keys = Object.keys(fields)
  const count = keys.length + 1
  if (count > 15) throw new RangeError('encodeBinHead supports at most 14 fields')
  parts.push(0x80 | count)
  const str = (s: string): void => {
    const b = encoder.encode(s)
    if (b.length < 32) parts.push(0xa0 | b.length)
    else if (b.length < 0x100) parts.push(0xd9, b.length)
    else throw new RangeError('encodeBinHead strings are at most 255 bytes')
    for (const x of b) parts.push(x)
  }
  const uint = (n: number): void => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`encodeBinHead integers are unsigned, got ${n}`)
    if (n < 0x80) parts.push(n)
    else if (n <= UINT32_MAX) parts.push(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    else {
      const hi = Math.floor(n / 0x100000000)
      parts.push(0xcf, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff,
        n >>> 24 & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    }
  }
  for (const key of keys) {
    str(key)
    const value = fields[key]
    if (typeof value === 'string') str(value)
    else uint(value)
  }
  str('data')
  parts.push(0xc6, binLength >>> 24, (binLength >>> 16) & 0xff, (binLength >>> 8) & 0xff, binLength & 0xff)
  return Uint8Array.from(parts)
}

/** Smallest `fragmentSize` a client may ask for (the chunk header must fit in the first frame). */
export const MIN_FRAGMENT_SIZE = 1024

/**
 * Read the fixed chunk header the server writes (CHUNK_HEAD_BYTES long, see writeChunkHead) at the start
 * of `bytes`; null when `bytes` does not start with exactly that layout (then decode it generically).
 */
export function readChunkHead (bytes: Uint8Array): { stream: number, offset: number, length: number } | null {
  if (bytes.byteLength < CHUNK_HEAD_BYTES) return null
  for (let i = 0; i < CHUNK_PREFIX.length; i++) if (bytes[i] !== CHUNK_PREFIX[i]) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, CHUNK_HEAD_BYTES)
  const at = CHUNK_PREFIX.length
  if (bytes[at] !== 0xce || bytes[at + 5 + OFFSET_KEY.length] !== 0xcf || bytes[CHUNK_HEAD_BYTES - 5] !== 0xc6) return null
  for (let i = 0; i < OFFSET_KEY.length; i++) if (bytes[at + 5 + i] !== OFFSET_KEY[i]) return null
  for (let i = 0; i < DATA_KEY.length; i++) if (bytes[CHUNK_HEAD_BYTES - 5 - DATA_KEY.length + i] !== DATA_KEY[i]) return null
  const stream = view.getUint32(at + 1)
  const o = at + 5 + OFFSET_KEY.length + 1
  const offset = view.getUint32(o) * 0x100000000 + view.getUint32(o + 4)
  const length = view.getUint32(CHUNK_HEAD_BYTES - 4)
  return { stream, offset, length }
}

/** Number of chunk messages for `byteLength` bytes at `chunkSize` per chunk. */
export function chunkCount (byteLength: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(byteLength / chunkSize))
}

/** WebSocket close codes the server uses besides those of the error registry (ERRORS[code].closeCode). */
export const CLOSE_CODES = Object.freeze({
  /** Normal closure (the client or server said goodbye). */
  NORMAL: 1000,
  /** The server is shutting down (PXP_ERR_CLOSED). */
  GOING_AWAY: 1001,
  /** Not MessagePack, not a map, or a text frame (PXP_ERR_PROTOCOL). */
  PROTOCOL_ERROR: 1002,
  /** A message over maxMessageBytes (PXP_ERR_BODY_TOO_LARGE). */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server failure (PXP_ERR_INTERNAL). */
  INTERNAL_ERROR: 1011,
  /** A subscription with policy 'all' overflowed its queue (PXP_ERR_QUEUE_FULL). */
  QUEUE_FULL: 4508,
} as const)
