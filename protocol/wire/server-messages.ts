/**
 * Every message the server sends over the WebSocket: one schema per op, and its TypeScript type derived
 * from that schema. Clients and tests validate what they receive against these.
 */
import { Type, type Static } from 'typebox'
import type { ErrorCode } from '../errors.js'
import { MAX_NDIM } from '../layout.js'
import { message } from './client-messages.js'
import {
  Bin, DescriptorSchema, ErrorBodySchema, Generation, ImageId, Positive, RegionSchema, RequestIdSchema, Uint, Uint32,
} from './fields.js'

const req = RequestIdSchema

/** Limits a client must respect; every one is enforced with a named error. */
export const ServerLimitsSchema = Type.Object({
  /** Largest message the server accepts, in bytes (larger: connection closed with 1009). */
  maxMessageBytes: Positive,
  /** Payload bytes per `chunk` message the server sends. */
  chunkSize: Positive,
  /** Bytes the server queues on a connection before it waits for the client to read. */
  highWaterMark: Positive,
  /** Largest image in bytes. */
  maxImageBytes: Type.Integer({ minimum: 1 }),
  /** Subscriptions per connection. */
  maxSubscriptions: Positive,
  /** `get` requests per connection that are queued or streaming. */
  maxStreams: Positive,
  /** Chunked `put` uploads per connection in progress at once. */
  maxUploads: Positive,
  /** Largest `queue` a subscription may ask for. */
  maxQueue: Positive,
  /** `queue` of a subscription that asks for none. */
  defaultQueue: Positive,
}, { additionalProperties: false })
export type ServerLimits = Static<typeof ServerLimitsSchema>

/**
 * One page of a listing: HTTP `GET /images` answers with these fields, WebSocket `images` with them plus
 * `op` and `req`.
 */
export const listPageFields = {
  images: Type.Array(DescriptorSchema),
  /** The `cursor` of the next page, or null when this page is the last. */
  next: Type.Union([Type.String(), Type.Null()], { description: 'Cursor of the next page (pass it as `cursor`), or null when this page is the last' }),
  /** scope `cluster` only: true when the cluster catalog was unreachable and only this node's images are listed. */
  partial: Type.Optional(Type.Boolean({ description: 'scope=cluster only: true when Redis is unreachable and only this node\'s images are listed' })),
  /** With `partial`: why (PXP_ERR_CLUSTER_UNAVAILABLE). */
  error: Type.Optional(Type.Unsafe<{ code: string, message: string }>({
    ...ErrorBodySchema,
    description: 'scope=cluster with partial: why (PXP_ERR_CLUSTER_UNAVAILABLE)',
  })),
}

export const WelcomeSchema = message('welcome', {
  req,
  protocol: Uint32,
  server: Type.String(),
  limits: ServerLimitsSchema,
  /** The WebSocket frame size chunk messages will be split into; 0: one frame per message. */
  fragmentSize: Uint32,
})
export type WelcomeMessage = Static<typeof WelcomeSchema>
export const ImagesSchema = message('images', { req, ...listPageFields })
export type ImagesMessage = Static<typeof ImagesSchema>
/** Reply to describe, create and put. */
export const DescriptorReplySchema = message('descriptor', { req, descriptor: DescriptorSchema })
export type DescriptorMessage = Static<typeof DescriptorReplySchema>
export const DeletedSchema = message('deleted', { req, id: ImageId })
export type DeletedMessage = Static<typeof DeletedSchema>
export const SubscribedSchema = message('subscribed', { req, sub: Uint32 })
export type SubscribedMessage = Static<typeof SubscribedSchema>
export const UnsubscribedSchema = message('unsubscribed', { req, sub: Uint32 })
export type UnsubscribedMessage = Static<typeof UnsubscribedSchema>
/**
 * Start of a stream of pixels: `chunks` chunk messages with this `stream` follow, then an `end`.
 * `req` is set for a get, `sub` for a subscription's frame.
 */
export const FrameSchema = message('frame', {
  req: Type.Optional(req),
  sub: Type.Optional(Uint32),
  stream: Uint32,
  /** The image, with `generation` set to the generation these bytes are. */
  descriptor: DescriptorSchema,
  generation: Generation,
  /** The rectangle sent, or null for the whole image. */
  region: Type.Union([RegionSchema, Type.Null()]),
  /** Shape of the bytes sent (the region's when there is one), C order. */
  shape: Type.Array(Positive, { minItems: 1, maxItems: MAX_NDIM }),
  typestr: Type.String(),
  byteLength: Positive,
  chunks: Positive,
})
export type FrameMessage = Static<typeof FrameSchema>
export const ChunkSchema = message('chunk', { stream: Uint32, offset: Uint, data: Bin })
export type ChunkMessage = Static<typeof ChunkSchema>
export const EndSchema = message('end', { stream: Uint32, req: Type.Optional(req), sub: Type.Optional(Uint32), byteLength: Positive })
export type EndMessage = Static<typeof EndSchema>
export const EventSchema = message('event', {
  sub: Uint32,
  type: Type.Enum(['created', 'updated', 'deleted']),
  id: ImageId,
  generation: Generation,
  descriptor: DescriptorSchema,
  /** Policy 'latest': updates of this image conflated into this one and never sent. Always 0 for 'all'. */
  skipped: Uint,
})
export type EventMessage = Static<typeof EventSchema>
export const ErrorMessageSchema = message('error', {
  /** The request that failed; null for a message that could not be attributed to one. */
  req: Type.Union([req, Type.Null()]),
  code: Type.Unsafe<ErrorCode>(Type.String({ pattern: '^PXP_ERR_[A-Z_]+$' })),
  message: Type.String(),
  /** Set when the error ends a stream (a get) or a subscription. */
  stream: Type.Optional(Uint32),
  sub: Type.Optional(Uint32),
})
export type ErrorMessage = Static<typeof ErrorMessageSchema>

export type ServerMessage =
  | WelcomeMessage | ImagesMessage | DescriptorMessage | DeletedMessage | SubscribedMessage | UnsubscribedMessage
  | FrameMessage | ChunkMessage | EndMessage | EventMessage | ErrorMessage

export type ServerOp = ServerMessage['op']

/** Schemas of every message the server sends, by op (for clients and tests). */
export const SERVER_MESSAGE_SCHEMAS = Object.freeze({
  welcome: WelcomeSchema, images: ImagesSchema, descriptor: DescriptorReplySchema, deleted: DeletedSchema,
  subscribed: SubscribedSchema, unsubscribed: UnsubscribedSchema, frame: FrameSchema, chunk: ChunkSchema,
  end: EndSchema, event: EventSchema, error: ErrorMessageSchema,
} satisfies Record<ServerOp, unknown>)
