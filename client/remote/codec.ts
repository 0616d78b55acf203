/**
 * MessagePack for the client: standard encoding only (protocol/messages.ts), and upload chunks built
 * from a hand-written header plus the payload rather than through the generic encoder.
 */
import { Packr, Unpackr } from 'msgpackr'
import { pxpError } from '../../protocol/errors.js'
import { encodeBinHead, WIRE_OPTIONS, type ClientMessage, type RequestId, type ServerMessage } from '../../protocol/messages.js'
import { scanMessagePack } from '../../protocol/strict-msgpack.js'

// Copies: msgpackr may keep state on the options object it is given.
const packr = new Packr({ ...WIRE_OPTIONS })
const unpackr = new Unpackr({ ...WIRE_OPTIONS })

export function encode (message: ClientMessage): Uint8Array {
  return packr.pack(message)
}

/**
 * Decode a server message; anything that is not a map with an `op` is a protocol error, and so is any
 * extension type (msgpackr would turn a timestamp into a Date, its own types into typed arrays).
 */
export function decode (bytes: Uint8Array): ServerMessage {
  let value: unknown
  try {
    scanMessagePack(bytes)
    value = unpackr.unpack(bytes)
  } catch (err) {
    if ((err as { code?: unknown }).code === 'PXP_ERR_PROTOCOL') throw err
    throw pxpError('PXP_ERR_PROTOCOL', `the server sent bytes that are not MessagePack (${(err as Error).message})`)
  }
  if (value === null || typeof value !== 'object' || typeof (value as { op?: unknown }).op !== 'string') {
    throw pxpError('PXP_ERR_PROTOCOL', 'the server sent a message that is not a map with an op')
  }
  return value as ServerMessage
}

/** `{ op: 'chunk', req, offset, data }` as one buffer: header written by hand, payload copied once. */
export function encodeUploadChunk (req: RequestId, offset: number, payload: Uint8Array): Uint8Array {
  const head = encodeBinHead({ op: 'chunk', req, offset }, payload.byteLength)
  const out = new Uint8Array(head.byteLength + payload.byteLength)
  out.set(head, 0)
  out.set(payload, head.byteLength)
  return out
}
