/**
 * The WebSocket protocol, in one import: the message types (derived from the schemas in
 * wire/client-messages.ts and wire/server-messages.ts, built from the field schemas HTTP shares,
 * wire/fields.ts), its constants and the encoding rules (wire/framing.ts). docs/protocol.md is the prose
 * version.
 *
 * Types only from the schema modules: a client importing this file (the browser viewer among them) does
 * not bundle the schemas or TypeBox. The server and tests import the schemas from wire/ directly.
 */
export * from './wire/framing.js'
export * from './wire/limits.js'
export type {
  CancelMessage, ClientMessage, ClientOp, CreateMessage, DeleteMessage, DescribeMessage, EventType, GetMessage, HelloMessage,
  ListMessage, Policy, PutMessage, SubscribeMessage, UnsubscribeMessage, UploadChunkMessage, UploadEndMessage,
} from './wire/client-messages.js'
export type {
  ChunkMessage, DeletedMessage, DescriptorMessage, EndMessage, ErrorMessage, EventMessage, FrameMessage, ImagesMessage,
  ServerLimits, ServerMessage, ServerOp, SubscribedMessage, UnsubscribedMessage, WelcomeMessage,
} from './wire/server-messages.js'
export type { Region, RequestId, Scope, SpecFields } from './wire/fields.js'
