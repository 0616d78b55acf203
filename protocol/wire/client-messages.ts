/**
 * Every message a client sends over the WebSocket: one schema per op, and its TypeScript type derived from
 * that schema. docs/protocol.md is the prose version. The server validates each message against these
 * (server/ws/validate.ts); nothing is hand-validated per op.
 */
import { Type, type Static, type TProperties } from 'typebox'
import type { ChangeType } from '../descriptor.js'
import {
  Bin, ImageId, listRequestFields, Positive, RequestIdSchema, RegionSchema, ScopeSchema, specFields, Uint, Uint32, UINT32_MAX,
} from './fields.js'
import { MIN_FRAGMENT_SIZE } from './framing.js'

/** `{ op, ...properties }` and nothing else. */
export function message<Op extends string, P extends TProperties> (op: Op, properties: P) {
  return Type.Object({ op: Type.Literal(op), ...properties }, { additionalProperties: false })
}

export const PolicySchema = Type.Enum(['latest', 'all'])
export type Policy = Static<typeof PolicySchema>
/** The wire name of the store's ChangeType. */
export type EventType = ChangeType

const req = RequestIdSchema

export const HelloSchema = message('hello', {
  req,
  protocol: Uint32,
  client: Type.Optional(Type.String({ maxLength: 256 })),
  /**
   * Ask for every `chunk` message to be sent as a fragmented WebSocket message whose frames carry at most
   * this many bytes (at least MIN_FRAGMENT_SIZE). The messages are the same; a client whose WebSocket
   * library hands out the fragments as they arrived (Node's `ws`, binaryType 'fragments') can then copy
   * each payload once, straight into its frame buffer.
   */
  fragmentSize: Type.Optional(Type.Integer({ minimum: MIN_FRAGMENT_SIZE, maximum: UINT32_MAX })),
  /**
   * The bearer token, when the server requires one and the upgrade request carried no
   * `Authorization: Bearer` header (browsers cannot set one). Must be in the first message.
   */
  token: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
})
export type HelloMessage = Static<typeof HelloSchema>

/**
 * One page of images, in id order: at most `limit` (default LIST_DEFAULT_LIMIT, at most LIST_MAX_LIMIT),
 * starting after `cursor` (the previous page's `next`).
 */
export const ListSchema = message('list', { req, ...listRequestFields })
export type ListMessage = Static<typeof ListSchema>
export const DescribeSchema = message('describe', { req, id: ImageId })
export type DescribeMessage = Static<typeof DescribeSchema>
export const CreateSchema = message('create', { req, id: Type.Optional(ImageId), ...specFields(Positive) })
export type CreateMessage = Static<typeof CreateSchema>
/**
 * Create or overwrite an image from bytes. With `data` the upload is complete in this message; without
 * it, `byteLength` is required and `chunk` messages with the same `req` follow, then an `end`.
 */
export const PutSchema = message('put', {
  req,
  id: Type.Optional(ImageId),
  ...specFields(Positive),
  byteLength: Type.Optional(Positive),
  data: Type.Optional(Bin),
})
export type PutMessage = Static<typeof PutSchema>
/** One piece of an upload: `offset` is the number of bytes sent before it (chunks come in order). */
export const UploadChunkSchema = message('chunk', { req, offset: Uint, data: Bin })
export type UploadChunkMessage = Static<typeof UploadChunkSchema>
export const UploadEndSchema = message('end', { req })
export type UploadEndMessage = Static<typeof UploadEndSchema>
export const GetSchema = message('get', { req, id: ImageId, generation: Type.Optional(Uint32), region: Type.Optional(RegionSchema) })
export type GetMessage = Static<typeof GetSchema>
export const DeleteSchema = message('delete', { req, id: ImageId })
export type DeleteMessage = Static<typeof DeleteSchema>
export const SubscribeSchema = message('subscribe', {
  req,
  /** Only these images (they need not exist yet); all images when absent. */
  ids: Type.Optional(Type.Array(ImageId, { minItems: 1, maxItems: 1024 })),
  /** Slow-consumer policy. Default 'latest'. */
  policy: Type.Optional(PolicySchema),
  /** Follow every `created`/`updated` event with the frame of that generation. Default false. */
  data: Type.Optional(Type.Boolean()),
  /** Policy 'all': events held for this subscriber before it is disconnected. Default: server's defaultQueue. */
  queue: Type.Optional(Positive),
  /** `cluster`: also events of images other nodes own (without frames, even with `data: true`). Default 'local'. */
  scope: Type.Optional(ScopeSchema),
})
export type SubscribeMessage = Static<typeof SubscribeSchema>
export const UnsubscribeSchema = message('unsubscribe', { req, sub: Uint32 })
export type UnsubscribeMessage = Static<typeof UnsubscribeSchema>
/** Abort the get or put in flight under `req`; it ends with an `error` PXP_ERR_ABORTED. */
export const CancelSchema = message('cancel', { req })
export type CancelMessage = Static<typeof CancelSchema>

export type ClientMessage =
  | HelloMessage | ListMessage | DescribeMessage | CreateMessage | PutMessage | UploadChunkMessage
  | UploadEndMessage | GetMessage | DeleteMessage | SubscribeMessage | UnsubscribeMessage | CancelMessage

export type ClientOp = ClientMessage['op']

/** Schemas of every message a client may send, by op. */
export const CLIENT_MESSAGE_SCHEMAS = Object.freeze({
  hello: HelloSchema, list: ListSchema, describe: DescribeSchema, create: CreateSchema, put: PutSchema,
  chunk: UploadChunkSchema, end: UploadEndSchema, get: GetSchema, delete: DeleteSchema, subscribe: SubscribeSchema,
  unsubscribe: UnsubscribeSchema, cancel: CancelSchema,
} satisfies Record<ClientOp, unknown>)

export const CLIENT_OPS = Object.keys(CLIENT_MESSAGE_SCHEMAS) as ClientOp[]
