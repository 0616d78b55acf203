/**
 * WebSocket framing and MessagePack encoding for the server side of the protocol.
 *
 * Control messages go through msgpackr configured for standard MessagePack (protocol/messages.ts).
 * Pixel chunks never do: their header is written by hand and the payload is handed to the socket as is,
 * so a chunk costs no copy of the pixels on the server — as one WebSocket frame, or, for a client that
 * asked for it (`hello.fragmentSize`), as a fragmented message whose frame payloads are views of it.
 */
import { Packr, Unpackr } from 'msgpackr'
import { pxpError } from '../../protocol/errors.js'
import { CHUNK_HEAD_BYTES, WIRE_OPTIONS, writeChunkHead, type ServerMessage } from '../../protocol/messages.js'
import { scanMessagePack } from '../../protocol/strict-msgpack.js'

const packr = new Packr(WIRE_OPTIONS)
const unpackr = new Unpackr(WIRE_OPTIONS)

/**
 * msgpackr writes integers beyond 32 bits as float64; the protocol promises integers, so such values
 * (rare: only sizes and offsets past 4 GiB) are turned into BigInts, which it writes as int 64/uint 64.
 * Returns the value itself when nothing needed changing, so the common case allocates nothing.
 */
function intsAsInts (value: unknown): unknown {
  if (typeof value === 'number') {
    return Number.isInteger(value) && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value
  if (Array.isArray(value)) {
    let out: unknown[] | null = null
    for (let i = 0; i < value.length; i++) {
      const v = intsAsInts(value[i])
      if (v !== value[i]) (out ??= value.slice())[i] = v
    }
    return out ?? value
  }
  let out: Record<string, unknown> | null = null
  for (const [k, v] of Object.entries(value)) {
    const w = intsAsInts(v)
    if (w !== v) (out ??= { ...value as Record<string, unknown> })[k] = w
  }
  return out ?? value
}

/** Encode a control message (never a chunk: see chunkFrameHead). */
export function encode (message: ServerMessage): Buffer {
  return packr.pack(intsAsInts(message))
}

/**
 * Decode one incoming message. Throws PXP_ERR_PROTOCOL for bytes that are not exactly one MessagePack
 * value of the kinds the protocol uses (truncated, trailing bytes, 0xc1, any extension type, nesting
 * deeper than MAX_NESTING). `floatPath` names the first float in it, if any (see strict-msgpack.ts).
 */
export function decodeMessage (bytes: Uint8Array): { value: unknown, floatPath: string | null } {
  // The strict walk first: msgpackr would decode extensions (a timestamp into a Date) and floats silently.
  const { floatPath } = scanMessagePack(bytes)
  let value: unknown
  try {
    value = unpackr.unpack(bytes)
  } catch (err) {
    throw pxpError('PXP_ERR_PROTOCOL', `not a MessagePack message (${(err as Error).message.slice(0, 120)})`)
  }
  if (value === undefined) throw pxpError('PXP_ERR_PROTOCOL', 'not a plain MessagePack value')
  return { value, floatPath }
}

/** decodeMessage's value alone. */
export function decode (bytes: Uint8Array): unknown {
  return decodeMessage(bytes).value
}

/** Bytes of a WebSocket frame header (unmasked) for a payload of `length`. */
function wsHeadLength (length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10
}

const OPCODE_CONTINUATION = 0x0
const OPCODE_BINARY = 0x2
const FIN = 0x80

/** Write a frame header at `at` (first byte: FIN flag | opcode); returns its length. */
function writeWsHead (target: Buffer, at: number, length: number, first: number): number {
  target[at] = first
  if (length < 126) {
    target[at + 1] = length
    return 2
  }
  if (length < 0x10000) {
    target[at + 1] = 126
    target.writeUInt16BE(length, at + 2)
    return 4
  }
  target[at + 1] = 127
  target.writeUInt32BE(Math.floor(length / 0x100000000), at + 2)
  target.writeUInt32BE(length >>> 0, at + 6)
  return 10
}

/**
 * Everything that precedes a chunk's payload on the wire when the server writes the frame itself: the
 * WebSocket frame header for the whole message, then the MessagePack chunk header. Write this, then the
 * payload, and the peer receives one ordinary binary message.
 */
export function chunkFrameHead (stream: number, offset: number, payloadLength: number): Buffer {
  const messageLength = CHUNK_HEAD_BYTES + payloadLength
  const head = Buffer.allocUnsafe(wsHeadLength(messageLength) + CHUNK_HEAD_BYTES)
  const at = writeWsHead(head, 0, messageLength, FIN | OPCODE_BINARY)
  writeChunkHead(head, at, stream, offset, payloadLength)
  return head
}

/**
 * The same chunk message as a fragmented WebSocket message of frames carrying at most `fragmentSize`
 * bytes: a list of buffers to write in order (headers, and views of `payload`: nothing is copied).
 * `fragmentSize` must leave room for the chunk header in the first frame.
 */
export function fragmentedChunk (stream: number, offset: number, payload: Uint8Array, fragmentSize: number): Uint8Array[] {
  const firstBytes = Math.min(payload.byteLength, fragmentSize - CHUNK_HEAD_BYTES)
  const frames = 1 + Math.ceil((payload.byteLength - firstBytes) / fragmentSize)
  // One allocation for every header: the first frame's (with the chunk header), then 4 bytes per
  // continuation frame (payloads under 64 KiB) or 10 (larger).
  const continuationHead = wsHeadLength(fragmentSize)
  const heads = Buffer.allocUnsafe(10 + CHUNK_HEAD_BYTES + (frames - 1) * continuationHead)
  const out: Uint8Array[] = []
  const single = frames === 1
  let at = writeWsHead(heads, 0, CHUNK_HEAD_BYTES + firstBytes, (single ? FIN : 0) | OPCODE_BINARY)
  at += writeChunkHead(heads, at, stream, offset, payload.byteLength)
  out.push(heads.subarray(0, at), payload.subarray(0, firstBytes))
  for (let from = firstBytes; from < payload.byteLength; from += fragmentSize) {
    const n = Math.min(fragmentSize, payload.byteLength - from)
    const fin = from + n === payload.byteLength ? FIN : 0
    const start = at
    at += writeWsHead(heads, at, n, fin | OPCODE_CONTINUATION)
    out.push(heads.subarray(start, at), payload.subarray(from, from + n))
  }
  return out
}

/** The MessagePack chunk header alone, for sending through `ws` as the first fragment of a message. */
export function chunkHead (stream: number, offset: number, payloadLength: number): Buffer {
  const head = Buffer.allocUnsafe(CHUNK_HEAD_BYTES)
  writeChunkHead(head, 0, stream, offset, payloadLength)
  return head
}
