/**
 * Turning an incoming WebSocket message into a typed ClientMessage, or a precise error.
 *
 * Every message is checked against its schema from protocol/wire/client-messages.ts; nothing is hand-validated per op.
 * Errors distinguish framing (PXP_ERR_PROTOCOL: the peer does not speak MessagePack maps; the connection
 * is closed) from content (PXP_ERR_UNKNOWN_OP, PXP_ERR_VALIDATION: answered, the connection stays open).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { isValidId } from '../../protocol/ids.js'
import { CLIENT_MESSAGE_SCHEMAS, CLIENT_OPS, type ClientMessage, type ClientOp } from '../../protocol/wire/client-messages.js'
import type { RequestId } from '../../protocol/wire/fields.js'
import { decodeMessage } from './codec.js'

export type Parsed =
  | { ok: true, message: ClientMessage }
  /** `fatal`: close the connection after answering. `req`: the request id, when one could be read. */
  | { ok: false, error: PixelportError, req: RequestId | null, fatal: boolean }

/**
 * Validators for every client op, compiled once per process on first use: the message schemas are
 * constants, so every server (and every MessageValidator) can share them.
 */
let compiledOps: Map<string, ValidateFunction> | null = null

function opValidators (): Map<string, ValidateFunction> {
  if (compiledOps !== null) return compiledOps
  const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false, removeAdditional: false })
  ajv.addKeyword({
    keyword: 'binary',
    schemaType: 'boolean',
    validate: (wanted: boolean, data: unknown) => !wanted || data instanceof Uint8Array,
    errors: false,
  })
  compiledOps = new Map(CLIENT_OPS.map((op) => [op, ajv.compile(CLIENT_MESSAGE_SCHEMAS[op])]))
  return compiledOps
}

/** Decodes and validates client messages (the op validators are shared, see opValidators). */
export class MessageValidator {
  private readonly validators = opValidators()

  /** Decode and validate one message as received from `ws` (`isBinary` false for a text frame). */
  parse (data: Uint8Array, isBinary: boolean): Parsed {
    if (!isBinary) {
      return { ok: false, error: pxpError('PXP_ERR_PROTOCOL', 'text frames are not part of the protocol; send binary MessagePack'), req: null, fatal: true }
    }
    let value: unknown
    let floatPath: string | null
    try {
      ({ value, floatPath } = decodeMessage(data))
    } catch (err) {
      return { ok: false, error: err as PixelportError, req: null, fatal: true }
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
      return { ok: false, error: pxpError('PXP_ERR_PROTOCOL', 'every message is a MessagePack map'), req: null, fatal: true }
    }
    const record = value as Record<string, unknown>
    const req = readReq(record.req)
    const op = record.op
    const validate = typeof op === 'string' ? this.validators.get(op) : undefined
    if (validate === undefined) {
      // Never String(op): a map whose `toString` is not a function makes that throw (and took the process down).
      return { ok: false, error: pxpError('PXP_ERR_UNKNOWN_OP', typeof op === 'string' ? op.slice(0, 64) : typeof op === 'object' && op !== null ? `(${Array.isArray(op) ? 'an array' : 'a map'})` : op), req, fatal: false }
    }
    // A malformed id is PXP_ERR_BAD_ID on every transport (HTTP checks ids before its schemas too).
    const badId = findBadId(record)
    if (badId !== null) return { ok: false, error: pxpError('PXP_ERR_BAD_ID', badId.slice(0, 200)), req, fatal: false }
    if (!validate(record)) {
      return { ok: false, error: pxpError('PXP_ERR_VALIDATION', `${op as string}: ${describe(validate.errors)}`), req, fatal: false }
    }
    // No field of the protocol is a float: one that got through the schema is a whole number in an
    // integer field (msgpackr decodes 4.0 as 4), which the spec's "uint" does not allow.
    if (floatPath !== null) {
      return { ok: false, error: pxpError('PXP_ERR_VALIDATION', `${op as string}: ${floatPath} must be a MessagePack integer, not a float`), req, fatal: false }
    }
    return { ok: true, message: record as unknown as ClientMessage }
  }
}

/** The first string in `id` or `ids` that is not a valid image id, or null. */
function findBadId (record: Record<string, unknown>): string | null {
  if (typeof record.id === 'string' && !isValidId(record.id)) return record.id
  if (Array.isArray(record.ids)) for (const id of record.ids) if (typeof id === 'string' && !isValidId(id)) return id
  return null
}

/** The request id, if the message carries a well-formed one (so even a rejected request gets its reply). */
function readReq (req: unknown): RequestId | null {
  if (typeof req === 'number' && Number.isSafeInteger(req) && req >= 0) return req
  if (typeof req === 'string' && req.length > 0 && req.length <= 64) return req
  return null
}

function describe (errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0]
  if (e === undefined) return 'invalid message'
  const where = e.instancePath === '' ? 'message' : e.instancePath.slice(1).replace(/\//g, '.')
  if (e.keyword === 'additionalProperties') return `${where} has unknown field ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`
  if (e.keyword === 'binary') return `${where} must be MessagePack bin`
  // As HTTP says it (server/http/validation-messages.ts): the values there are, not "one of the allowed values".
  if (e.keyword === 'enum') return `${where} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
  if (e.keyword === 'required') return `${where} needs the field ${JSON.stringify((e.params as { missingProperty: string }).missingProperty)}`
  return `${where} ${e.message ?? 'is invalid'}`
}

export type { ClientOp }
