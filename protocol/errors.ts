/**
 * The one registry of Pixelport errors.
 *
 * Every failure that crosses a boundary (HTTP response, WebSocket `error` message, worker reply) carries a
 * stable `code` from this table. Callers match on `err.code`, never on the message and never with
 * `instanceof`: class identity does not survive structured clone between threads, the code does.
 */

export interface ErrorSpec {
  /** HTTP status used when this error ends an HTTP request. */
  readonly status: number
  /** WebSocket close code used when this error ends a connection (4000-4999 is the application range). */
  readonly closeCode: number
  /** Human message; `%s` (as is) and `%q` (quoted) placeholders are filled in order from `pxpError`'s arguments. */
  readonly message: string
}

export const ERRORS = {
  PXP_ERR_BAD_REQUEST: { status: 400, closeCode: 4400, message: 'Bad request: %s' },
  PXP_ERR_VALIDATION: { status: 400, closeCode: 4400, message: 'Invalid input: %s' },
  PXP_ERR_BAD_ID: { status: 400, closeCode: 4400, message: 'Invalid image id %q: an id is 1-128 characters, "/"-separated segments of A-Z a-z 0-9 . _ - that do not start with "."' },
  PXP_ERR_BAD_MODE: { status: 400, closeCode: 4400, message: 'Unknown image mode %q; the modes are %s' },
  PXP_ERR_BAD_DTYPE: { status: 400, closeCode: 4400, message: 'Unsupported typestr %q; a numpy typestr is %s' },
  PXP_ERR_BAD_SHAPE: { status: 400, closeCode: 4400, message: 'Invalid shape: %s' },
  PXP_ERR_BYTE_COUNT: { status: 400, closeCode: 4400, message: 'Byte count mismatch: expected %s bytes, got %s' },
  PXP_ERR_BAD_REGION: { status: 400, closeCode: 4400, message: 'Region %s lies outside image %q (%s)' },
  PXP_ERR_BAD_RANGE: { status: 416, closeCode: 4400, message: 'Range not satisfiable: %s' },
  PXP_ERR_UNAUTHORIZED: { status: 401, closeCode: 4401, message: 'Authentication required' },
  PXP_ERR_FORBIDDEN: { status: 403, closeCode: 4403, message: 'Not allowed: %s' },
  PXP_ERR_NOT_FOUND: { status: 404, closeCode: 4404, message: 'Image %q not found' },
  PXP_ERR_ROUTE_NOT_FOUND: { status: 404, closeCode: 4404, message: 'No route %s' },
  PXP_ERR_ALREADY_EXISTS: { status: 409, closeCode: 4409, message: 'Image %q already exists' },
  PXP_ERR_READONLY: { status: 409, closeCode: 4409, message: 'Image %q is read-only' },
  PXP_ERR_GENERATION_GONE: { status: 409, closeCode: 4409, message: 'Generation %s of image %q is no longer available (current: %s)' },
  PXP_ERR_LOCK_TIMEOUT: { status: 503, closeCode: 4503, message: 'Timed out after %s ms waiting for the write lock of image %q' },
  PXP_ERR_BODY_TOO_LARGE: { status: 413, closeCode: 1009, message: 'Body of %s bytes exceeds the limit of %s bytes' },
  PXP_ERR_TOO_LARGE: { status: 413, closeCode: 4413, message: 'Image of %s bytes exceeds the per-image limit of %s bytes' },
  PXP_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, closeCode: 4415, message: 'Unsupported content type %q for %s; accepted: %s' },
  PXP_ERR_BAD_IMAGE: { status: 400, closeCode: 4400, message: 'Cannot decode the image file: %s' },
  PXP_ERR_NOT_ENCODABLE: { status: 406, closeCode: 4406, message: 'Image %q cannot be encoded as %s: %s' },
  PXP_ERR_TOO_MANY_IMAGES: { status: 507, closeCode: 4507, message: 'The store holds its maximum of %s images' },
  PXP_ERR_CAPACITY: { status: 507, closeCode: 4507, message: 'Not enough memory for %s bytes: %s of %s bytes capacity in use' },
  PXP_ERR_SHM_FULL: { status: 507, closeCode: 4507, message: 'Shared memory is full: no room for a segment of %s bytes (%s)' },
  PXP_ERR_SHM: { status: 500, closeCode: 1011, message: 'Shared memory error: %s' },
  PXP_ERR_CLOSED: { status: 503, closeCode: 1001, message: 'The %s is closed' },
  PXP_ERR_TIMEOUT: { status: 504, closeCode: 4504, message: 'Timed out after %s ms: %s' },
  PXP_ERR_ABORTED: { status: 499, closeCode: 4499, message: 'Aborted: %s' },
  PXP_ERR_PROTOCOL: { status: 400, closeCode: 1002, message: 'Protocol error: %s' },
  PXP_ERR_UNKNOWN_OP: { status: 400, closeCode: 4400, message: 'Unknown op %q' },
  // Four bounded queues, a code each (they shared one code before: see RETIRED_CODES).
  /** A server-side subscription queue overflowed: the client did not read its events in time. */
  PXP_ERR_SUBSCRIPTION_OVERFLOW: { status: 503, closeCode: 4508, message: 'Subscription queue overflowed: %s' },
  /** A remote client's own event buffer overflowed: the application did not consume the events it was handed. */
  PXP_ERR_CONSUMER_OVERFLOW: { status: 503, closeCode: 4508, message: 'Events not consumed in time: %s' },
  /** The snapshot memory for remote readers is held by other readers; retry later. */
  PXP_ERR_SNAPSHOT_BUDGET: { status: 503, closeCode: 4503, message: 'Snapshot memory is in use: %s' },
  /** Every write-lock token for in-process worker connections was handed out. */
  PXP_ERR_LOCK_TOKENS_EXHAUSTED: { status: 503, closeCode: 4503, message: 'No write-lock tokens left: %s' },
  PXP_ERR_TOO_MANY_SUBSCRIPTIONS: { status: 429, closeCode: 4429, message: 'A connection may hold at most %s subscriptions' },
  PXP_ERR_TOO_MANY_STREAMS: { status: 429, closeCode: 4429, message: 'A connection may have at most %s gets queued or streaming' },
  PXP_ERR_TOO_MANY_UPLOADS: { status: 429, closeCode: 4429, message: 'A connection may have at most %s uploads in progress' },
  PXP_ERR_NOT_LEASED: { status: 409, closeCode: 4409, message: 'Handle for %q was released' },
  PXP_ERR_INSECURE: { status: 500, closeCode: 1011, message: 'Refusing to listen on %q without tokens: anyone who can reach it could read and overwrite every image. Configure tokens (--token, --token-file or PIXELPORT_TOKENS), listen on 127.0.0.1, or pass --insecure if the network is trusted' },
  PXP_ERR_OVERLOADED: { status: 503, closeCode: 4503, message: 'Server overloaded (%s); retry shortly' },
  PXP_ERR_TOO_MANY_CONNECTIONS: { status: 429, closeCode: 4429, message: 'At most %s WebSocket connections per %s' },
  PXP_ERR_INTERNAL: { status: 500, closeCode: 1011, message: 'Internal error: %s' },
  PXP_ERR_CLUSTER_UNAVAILABLE: { status: 503, closeCode: 4503, message: 'The cluster catalog is unavailable: %s' },
  PXP_ERR_PEER_UNREACHABLE: { status: 502, closeCode: 4502, message: 'Node %q at %s, owner of image %q, did not answer: %s' },
  PXP_ERR_NOT_OWNER: { status: 421, closeCode: 4421, message: 'Image %q is owned by node %q at %s: %s' },
  // Uploads (server/uploads): the staging budget shared by every upload path, and the body timeouts.
  PXP_ERR_STAGING_FULL: { status: 503, closeCode: 4503, message: 'Upload staging is full: %s' },
  PXP_ERR_UPLOAD_TIMEOUT: { status: 408, closeCode: 4408, message: 'Upload aborted: %s' },
  // Refused at the edge, before any route (server/http/request-guard.ts, server/http/client-errors.ts).
  PXP_ERR_BAD_TARGET: { status: 400, closeCode: 4400, message: 'Request target %q is not a path: only origin-form targets such as /images/x are served' },
  PXP_ERR_BAD_HOST: { status: 421, closeCode: 4421, message: 'Host %q is not served here: %s' },
  PXP_ERR_BAD_ORIGIN: { status: 403, closeCode: 4403, message: 'Origin %q may not use this server: %s' },
  PXP_ERR_UPGRADE_REQUIRED: { status: 426, closeCode: 4400, message: '%s is the WebSocket endpoint: connect with Upgrade: websocket' },
  PXP_ERR_HEADERS_TOO_LARGE: { status: 431, closeCode: 4400, message: 'Request headers exceed the limit of %s bytes' },
  PXP_ERR_REQUEST_TIMEOUT: { status: 408, closeCode: 4408, message: 'The request did not arrive in time: %s' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/**
 * Codes no longer sent, each with the codes that replaced it, so a client that matched on the old one knows
 * what to match now (README "Errors" and docs/protocol.md §9.3 say which replaced it where).
 */
export const RETIRED_CODES: Readonly<Record<string, readonly ErrorCode[]>> = Object.freeze({
  PXP_ERR_QUEUE_FULL: ['PXP_ERR_SUBSCRIPTION_OVERFLOW', 'PXP_ERR_CONSUMER_OVERFLOW', 'PXP_ERR_SNAPSHOT_BUDGET', 'PXP_ERR_LOCK_TOKENS_EXHAUSTED'],
})

/** The plain shape an error takes on the wire: `{ code, message }` (+ optional details). */
export interface ErrorBody {
  code: ErrorCode
  message: string
  details?: unknown
}

/**
 * A Pixelport error. To cross a thread, send `toJSON()` and rebuild with `errorFromBody`: structured clone
 * of an Error keeps only name, message and stack, so `code` would be lost.
 */
export class PixelportError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details?: unknown

  constructor (code: ErrorCode, message: string, details?: unknown) {
    super(message)
    this.name = 'PixelportError'
    this.code = code
    this.status = ERRORS[code].status
    if (details !== undefined) this.details = details
  }

  toJSON (): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message }
    if (this.details !== undefined) body.details = this.details
    return body
  }
}

/**
 * A value as message text. Never throws: a client can send a map whose `toString` is not a function, for
 * which `String()` throws a TypeError (and a deeply nested array overflows the stack). Non-strings are cut
 * short, since they are only ever there to name what was wrong.
 */
export function textOf (value: unknown): string {
  if (typeof value === 'string') return value
  let text: string
  try {
    text = String(value)
  } catch {
    text = Object.prototype.toString.call(value)
  }
  return text.length > 200 ? text.slice(0, 200) + '…' : text
}

/** `%s` inserts a value as is; `%q` quotes it (names a client sent: ids, modes, ops), so blanks and odd bytes show. */
function format (template: string, args: readonly unknown[]): string {
  let i = 0
  return template.replace(/%[sq]/g, (placeholder) => {
    const value = args[i++]
    return placeholder === '%q' ? JSON.stringify(textOf(value)) : textOf(value)
  })
}

/** Build the error for `code`, filling the message template with `args`. */
export function pxpError (code: ErrorCode, ...args: unknown[]): PixelportError {
  return new PixelportError(code, format(ERRORS[code].message, args))
}

/** Type guard that works across threads and bundled copies: it looks at the code, not the class. */
export function isPixelportError (value: unknown): value is { code: ErrorCode, message: string } {
  return typeof value === 'object' && value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ERRORS, (value as { code: string }).code)
}

/**
 * The `{ code, message, details? }` body in the text of an HTTP answer, or null when the text is not one
 * (a proxy's error page, an empty 502). The one parser of error bodies: the HTTP client, the CLI and the
 * cluster's replica pulls all read them through it.
 */
export function errorBodyIn (text: string): { code: string, message: string, details?: unknown } | null {
  try {
    const body = JSON.parse(text) as { code?: unknown, message?: unknown, details?: unknown } | null
    if (typeof body?.code === 'string' && typeof body.message === 'string') return { code: body.code, message: body.message, details: body.details }
  } catch {
    // Not JSON: not an error body.
  }
  return null
}

/** Rebuild a PixelportError from a wire body (from another thread or a remote server). */
export function errorFromBody (body: { code: string, message: string, details?: unknown }): PixelportError {
  const code: ErrorCode = Object.hasOwn(ERRORS, body.code) ? body.code as ErrorCode : 'PXP_ERR_INTERNAL'
  return new PixelportError(code, body.message, body.details)
}
