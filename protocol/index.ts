/**
 * `pixelport/protocol`: the public vocabulary shared by the server and every client — errors, dtypes,
 * modes, ids, the descriptor and the WebSocket wire version and message types. The shared-memory layout
 * (`HEADER`, `SLOT`, claims), the seqlock and lock steps (`protocol/sync.ts`) and the worker/attach
 * handshakes stay internal: they are documented byte by byte in docs/shared-memory.md for other languages,
 * but they are not an API a program should build on. README "Public API" lists every name exported here;
 * test/structure/public-api.test.ts keeps the two equal.
 */
export {
  ERRORS, PixelportError, isPixelportError, errorFromBody,
  type ErrorCode, type ErrorSpec, type ErrorBody
} from './errors.js'
export {
  DTYPES, dtypeOf, isTypestr, normalizeTypestr, halfToNumber,
  type DType, type TypedArray, type TypedArrayConstructor
} from './dtypes.js'
export { MODES, MODE_NAMES, modeOf, modeShape, inferMode, type ModeSpec } from './modes.js'
export { ID_PATTERN, MAX_ID_LENGTH, isValidId, assertValidId } from './ids.js'
export { cStrides, isCContiguous, type CreateRequest, type Layout } from './spec.js'
export {
  typedArrayFor, arrayInterface,
  type ImageDescriptor, type ArrayInterface, type ChangeType, type Location, type RowSegment,
  type ControlLocation, type ViewInfo
} from './descriptor.js'
export {
  PROTOCOL_VERSION,
  type ClientMessage, type ServerMessage, type EventType, type Policy, type Region, type Scope, type ServerLimits
} from './messages.js'
