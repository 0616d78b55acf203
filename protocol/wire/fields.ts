/**
 * The field schemas every transport shares: request ids, image ids, integers, the image spec and the
 * descriptor. HTTP routes (server/http/schemas.ts), the WebSocket messages (client-messages.ts,
 * server-messages.ts) and their TypeScript types all come from these, so the transports cannot drift.
 *
 * TypeBox builds plain JSON Schema (its bookkeeping keys are not enumerable), which fastify's ajv and
 * fast-json-stringify compile as they are. One custom keyword is used: `binary: true` means "a MessagePack
 * `bin`" (a Uint8Array once decoded); only the WebSocket validators know it.
 */
import { Type, type Static, type TSchema } from 'typebox'
import type { ImageDescriptor } from '../descriptor.js'
import { ID_PATTERN, MAX_ID_LENGTH } from '../ids.js'
import { MAX_FRAMES, MAX_NDIM } from '../layout.js'
import { LIST_DEFAULT_LIMIT, LIST_MAX_CURSOR_LENGTH, LIST_MAX_LIMIT } from './limits.js'
import { MODE_NAMES } from '../modes.js'

export const UINT32_MAX = 0xffffffff

/** Any JSON schema (TypeBox's or a plain object). */
export type JsonSchema = TSchema

/** A non-negative integer a JavaScript number holds exactly. */
export const Uint = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
export const Uint32 = Type.Integer({ minimum: 0, maximum: UINT32_MAX })
export const Positive = Type.Integer({ minimum: 1, maximum: UINT32_MAX })
/** A MessagePack `bin` (WebSocket only). */
export const Bin = Type.Unsafe<Uint8Array>({ binary: true })

/**
 * A generation: the count of committed writes, kept in a 32-bit word of shared memory (docs/shared-memory.md)
 * and read as unsigned, so it is a uint32 that wraps to 0 after 2^32 − 1 commits. Every transport says so.
 */
export const Generation = Type.Integer({ minimum: 0, maximum: UINT32_MAX, description: 'Committed writes so far: a uint32 (wraps to 0 after 4294967295)' })

/** A client-chosen request id, echoed verbatim in every reply: an unsigned integer or a short string. */
export const RequestIdSchema = Type.Union([
  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  Type.String({ minLength: 1, maxLength: 64 }),
])
export type RequestId = Static<typeof RequestIdSchema>

/** An image id, checked in full. (HTTP checks ids with the id rules before its schemas: PXP_ERR_BAD_ID.) */
export const ImageId = Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH, pattern: ID_PATTERN })

export const LayoutSchema = Type.Enum(['block', 'lines'])
export const ScopeSchema = Type.Enum(['local', 'cluster'])
/**
 * Which images: `local` (default) this node's; `cluster` every live node's (each descriptor then carries
 * `node` and `url`, the owner's id and base URL). A server that is not in a cluster treats both alike.
 */
export type Scope = Static<typeof ScopeSchema>

/** `{ code, message }`: every error a client hears, on every transport. */
export const ErrorBodySchema = Type.Object({
  code: Type.String({ description: 'Stable PXP_ERR_* code' }),
  message: Type.String(),
  details: Type.Optional(Type.Unknown()),
})

export const RegionSchema = Type.Object({ x: Uint32, y: Uint32, width: Positive, height: Positive }, { additionalProperties: false })
export type Region = Static<typeof RegionSchema>

// ---- list pages ---------------------------------------------------------------------------------------

/** What a `list` asks for: HTTP `GET /images?scope&limit&cursor` and WebSocket `list`. */
export const listRequestFields = {
  scope: Type.Optional(ScopeSchema),
  limit: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: LIST_MAX_LIMIT,
    description: `Descriptors per page (default ${LIST_DEFAULT_LIMIT}, at most ${LIST_MAX_LIMIT}; more is refused)`,
  })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: LIST_MAX_CURSOR_LENGTH, description: 'The `next` of the previous page' })),
}

// ---- the image spec -----------------------------------------------------------------------------------

export const ModeSchema = Type.String({ minLength: 1, maxLength: 16, description: `One of ${MODE_NAMES.join(' ')}` })
export const TypestrSchema = Type.String({ minLength: 2, maxLength: 4, description: 'numpy typestr, e.g. |u1 <u2 >f4' })
/** A shape as a list: 1 to MAX_NDIM dimensions. 1-D shapes may exceed maxDimension: the spec checks the limits. */
export const ShapeSchema = Type.Array(Positive, { minItems: 1, maxItems: MAX_NDIM })

/**
 * The fields of an image spec (`POST /images`, WebSocket `create`/`put`): `{ width, height, mode }` or
 * `{ shape, typestr }`, with `layout`, `readonly` and `frames`. `dimension` bounds width and height: the
 * WebSocket schema is a constant (uint32, the store checks maxDimension), HTTP's names the server's limit.
 */
export function specFields<D extends TSchema> (dimension: D) {
  return {
    width: Type.Optional(dimension),
    height: Type.Optional(dimension),
    mode: Type.Optional(ModeSchema),
    shape: Type.Optional(ShapeSchema),
    typestr: Type.Optional(TypestrSchema),
    layout: Type.Optional(LayoutSchema),
    readonly: Type.Optional(Type.Boolean()),
    /** Frame buffers for loan/publish writers (worker threads). Default 1. */
    frames: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_FRAMES, description: 'Frame buffers for loan/publish writers' })),
  }
}

/** The fields of HTTP `POST /images` and of WebSocket `create`/`put`. */
export const SpecFieldsSchema = Type.Object(specFields(Positive))
export type SpecFields = Static<typeof SpecFieldsSchema>

// ---- the descriptor -----------------------------------------------------------------------------------

const Natural = Uint
const NullableString = Type.Union([Type.String(), Type.Null()])

export const ArrayInterfaceSchema = Type.Object({
  version: Type.Literal(3),
  shape: Type.Array(Natural),
  typestr: Type.String(),
  descr: Type.Array(Type.Tuple([Type.String(), Type.String()])),
  strides: Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: 'null when C-contiguous, else byte strides' }),
  offset: Type.Optional(Type.Integer({ ...Uint, description: 'Byte offset into the bytes of `base`; present only when non-zero' })),
  data: Type.Null(),
}, { additionalProperties: true, description: "numpy's array interface (version 3); fill `data` with the bytes and call numpy.asarray" })

/** Control words of the image for processes on the same host (null without /dev/shm). */
const controlFields = {
  table: Type.Optional(NullableString),
  slot: Type.Optional(Natural),
  controlSlot: Type.Optional(Natural),
  controlOffset: Type.Optional(Natural),
  socket: Type.Optional(NullableString),
}

export const LocationSchema = Type.Union([
  Type.Object({
    kind: Type.Literal('block'),
    block: Type.Integer(),
    byteOffset: Natural,
    frames: Type.Optional(Natural),
    frame: Type.Optional(Natural),
    frameStride: Type.Optional(Natural),
    segment: Type.Optional(NullableString),
    ...controlFields,
  }, { additionalProperties: true }),
  Type.Object({
    kind: Type.Literal('lines'),
    rowBytes: Natural,
    segments: Type.Array(Type.Object({
      block: Type.Integer(),
      byteOffset: Natural,
      rows: Natural,
      segment: Type.Optional(NullableString),
    }, { additionalProperties: true })),
    ...controlFields,
  }, { additionalProperties: true }),
])

const ViewInfoSchema = Type.Union([
  Type.Object({ parent: Type.String(), x: Natural, y: Natural, width: Natural, height: Natural }, { additionalProperties: true }),
  Type.Null(),
])

/**
 * The descriptor, as every transport sends it. Objects that other parts of Pixelport may grow keep
 * `additionalProperties: true`: fastify's serialiser would drop unknown properties otherwise, and a field
 * silently missing over HTTP is worse than an undocumented one.
 */
const DescriptorObject = Type.Object({
  id: Type.String(),
  mode: NullableString,
  width: Natural,
  height: Natural,
  channels: Natural,
  typestr: Type.String(),
  shape: Type.Array(Natural),
  byteLength: Natural,
  generation: Generation,
  readonly: Type.Boolean(),
  layout: LayoutSchema,
  copied: Type.Boolean(),
  base: Type.String({ description: 'The image whose bytes __array_interface__ strides and offset refer to' }),
  view: ViewInfoSchema,
  location: LocationSchema,
  __array_interface__: ArrayInterfaceSchema,
  owner: Type.Optional(Type.String({ description: 'Replicas only: the cluster node that owns the image' })),
  sourceGeneration: Type.Optional(Type.Integer({ ...Generation, description: "Replicas only: the owner's generation these pixels are a copy of" })),
  stale: Type.Optional(Type.Boolean({ description: 'Replicas only: the owner is gone or deleted the image' })),
  evicted: Type.Optional(Type.Boolean({ description: 'Only on a `deleted` event: the image was evicted to make room' })),
  node: Type.Optional(Type.String({ description: 'scope=cluster listings: the id of the node that owns the image' })),
  url: Type.Optional(Type.String({ description: "scope=cluster listings: the owner's base URL" })),
}, { additionalProperties: true })

/**
 * THE descriptor schema: HTTP responses, WebSocket replies and events all use this one object. Its type is
 * protocol/descriptor.ts's ImageDescriptor, which the check below holds to the schema.
 */
export const DescriptorSchema = Type.Unsafe<ImageDescriptor>(DescriptorObject)

// Compile-time: every descriptor the server builds is one the schema describes (a field added to
// ImageDescriptor with a type the schema does not allow fails the build here).
type Fits<A, B> = [A] extends [B] ? true : false
const descriptorFitsSchema: Fits<ImageDescriptor, Static<typeof DescriptorObject>> = true
void descriptorFitsSchema
