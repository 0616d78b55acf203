/**
 * How WebSocket messages are encoded: standard MessagePack maps (no msgpackr records, structures or
 * extensions), so a client in any language with an ordinary MessagePack library can speak the protocol;
 * and the fixed-layout header of `chunk` messages, which lets both sides move payloads without a copy.
 */

/** Bumped on any incompatible change to the messages (client-messages.ts, server-messages.ts). */
export const PROTOCOL_VERSION = 1

const UINT32_MAX = 0xffffffff

/**
 * msgpackr options that produce and accept standard MessagePack only: no records/structures, no
 * bundled strings, no msgpackr extension types, `undefined` as nil, maps as plain objects, 64-bit
 * integers decoded as numbers. Both Packr and Unpackr take this object.
 */
export const WIRE_OPTIONS = Object.freeze({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  int64AsType: 'number',
  useTimestamp32: false,
} as const)

/**
 * Length of the header the server writes in front of every chunk payload. It is a multiple of 8, so a
 * payload that starts a message buffer (as each large WebSocket message does) is aligned for any dtype.
 */
export const CHUNK_HEAD_BYTES = 48

// fixstr-encoded keys and values of the fixed chunk header, in order.
const CHUNK_PREFIX = Uint8Array.from([
  0x84, // fixmap, 4 entries
  0xa2, 0x6f, 0x70, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, // "op": "chunk"
  0xa6, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, // "stream"
])
const OFFSET_KEY = Uint8Array.from([0xa6, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74]) // "offset"
const DATA_KEY = Uint8Array.from([0xa4, 0x64, 0x61, 0x74, 0x61]) // "data"

/**
 * The MessagePack bytes of `{ op: 'chunk', stream, offset, data }` up to and including the `bin 32`
 * length prefix of `data`: send these, then the payload, as one message. Fixed-width integers (uint 32
 * for stream, uint 64 for offset) keep the header exactly CHUNK_HEAD_BYTES long; MessagePack allows any
 * width, so every decoder reads it.
 */
export function writeChunkHead (target: Uint8Array, at: number, stream: number, offset: number, payloadLength: number): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength)
  let p = at
  target.set(CHUNK_PREFIX, p)
  p += CHUNK_PREFIX.length
  target[p++] = 0xce
  view.setUint32(p, stream)
  p += 4
  target.set(OFFSET_KEY, p)
  p += OFFSET_KEY.length
  target[p++] = 0xcf
  view.setUint32(p, Math.floor(offset / 0x100000000))
  view.setUint32(p + 4, offset >>> 0)
  p += 8
  target.set(DATA_KEY, p)
  p += DATA_KEY.length
  target[p++] = 0xc6
  view.setUint32(p, payloadLength)
  p += 4
  return p - at
}

const encoder = new TextEncoder()

/**
 * The MessagePack bytes of a small map of string and unsigned-integer fields followed by a `data` key
 * and the `bin` header for `binLength` bytes: prepend to a payload to get the whole message without
 * packing the payload through a generic encoder.
 */
export function encodeBinHead (fields: Readonly<Record<string, string | number>>, binLength: number): Uint8Array {
  const parts: number[] = []
  const keys = Object.keys(fields)
  const count = keys.length + 1
  if (count > 15) throw new RangeError('encodeBinHead supports at most 14 fields')
  parts.push(0x80 | count)
  const str = (s: string): void => {
    const b = encoder.encode(s)
    if (b.length < 32) parts.push(0xa0 | b.length)
    else if (b.length < 0x100) parts.push(0xd9, b.length)
    else throw new RangeError('encodeBinHead strings are at most 255 bytes')
    for (const x of b) parts.push(x)
  }
  const uint = (n: number): void => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`encodeBinHead integers are unsigned, got ${n}`)
    if (n < 0x80) parts.push(n)
    else if (n <= UINT32_MAX) parts.push(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    else {
      const hi = Math.floor(n / 0x100000000)
      parts.push(0xcf, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff,
        n >>> 24 & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    }
  }
  for (const key of keys) {
    str(key)
    const value = fields[key]
    if (typeof value === 'string') str(value)
    else uint(value)
  }
  str('data')
  parts.push(0xc6, binLength >>> 24, (binLength >>> 16) & 0xff, (binLength >>> 8) & 0xff, binLength & 0xff)
  return Uint8Array.from(parts)
}

/** Smallest `fragmentSize` a client may ask for (the chunk header must fit in the first frame). */
export const MIN_FRAGMENT_SIZE = 1024

/**
 * Read the fixed chunk header the server writes (CHUNK_HEAD_BYTES long, see writeChunkHead) at the start
 * of `bytes`; null when `bytes` does not start with exactly that layout (then decode it generically).
 */
export function readChunkHead (bytes: Uint8Array): { stream: number, offset: number, length: number } | null {
  if (bytes.byteLength < CHUNK_HEAD_BYTES) return null
  for (let i = 0; i < CHUNK_PREFIX.length; i++) if (bytes[i] !== CHUNK_PREFIX[i]) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, CHUNK_HEAD_BYTES)
  const at = CHUNK_PREFIX.length
  if (bytes[at] !== 0xce || bytes[at + 5 + OFFSET_KEY.length] !== 0xcf || bytes[CHUNK_HEAD_BYTES - 5] !== 0xc6) return null
  for (let i = 0; i < OFFSET_KEY.length; i++) if (bytes[at + 5 + i] !== OFFSET_KEY[i]) return null
  for (let i = 0; i < DATA_KEY.length; i++) if (bytes[CHUNK_HEAD_BYTES - 5 - DATA_KEY.length + i] !== DATA_KEY[i]) return null
  const stream = view.getUint32(at + 1)
  const o = at + 5 + OFFSET_KEY.length + 1
  const offset = view.getUint32(o) * 0x100000000 + view.getUint32(o + 4)
  const length = view.getUint32(CHUNK_HEAD_BYTES - 4)
  return { stream, offset, length }
}

/** Number of chunk messages for `byteLength` bytes at `chunkSize` per chunk. */
export function chunkCount (byteLength: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(byteLength / chunkSize))
}

/** WebSocket close codes the server uses besides those of the error registry (ERRORS[code].closeCode). */
export const CLOSE_CODES = Object.freeze({
  /** Normal closure (the client or server said goodbye). */
  NORMAL: 1000,
  /** The server is shutting down (PXP_ERR_CLOSED). */
  GOING_AWAY: 1001,
  /** Not MessagePack, not a map, or a text frame (PXP_ERR_PROTOCOL). */
  PROTOCOL_ERROR: 1002,
  /** A message over maxMessageBytes (PXP_ERR_BODY_TOO_LARGE). */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server failure (PXP_ERR_INTERNAL). */
  INTERNAL_ERROR: 1011,
  /** A subscription with policy 'all' overflowed its queue (PXP_ERR_SUBSCRIPTION_OVERFLOW). */
  SUBSCRIPTION_OVERFLOW: 4508,
} as const)
