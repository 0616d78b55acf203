/**
 * Turning failures into `error` messages: registry errors keep their code and message; anything else is
 * an internal error whose details stay in the server log, not on the wire.
 */
import { isPixelportError } from '../../protocol/errors.js'
import type { ErrorMessage, RequestId } from '../../protocol/messages.js'

/** The `error` message for `err`, answering `req` (and naming the stream or subscription it ended). */
export function errorReply (req: RequestId | null, err: unknown, extra: { stream?: number, sub?: number } = {}): ErrorMessage {
  if (isPixelportError(err)) return { op: 'error', req, code: err.code, message: err.message, ...extra }
  return { op: 'error', req, code: 'PXP_ERR_INTERNAL', message: 'Internal error: the server could not complete this request', ...extra }
}
