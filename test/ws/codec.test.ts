/**
 * The wire encoding: hand-written headers decode as ordinary MessagePack, integers stay integers, nothing
 * msgpackr-specific reaches the wire.
 */
import fc from 'fast-check'
import { Unpackr } from 'msgpackr'
import t from 'tap'
import { CHUNK_HEAD_BYTES, encodeBinHead, readChunkHead, WIRE_OPTIONS, writeChunkHead } from '../../protocol/messages.js'
import { CLIENT_MESSAGE_SCHEMAS } from '../../protocol/wire/client-messages.js'
import { SERVER_MESSAGE_SCHEMAS } from '../../protocol/wire/server-messages.js'
import { ERRORS } from '../../protocol/errors.js'
import { chunkFrameHead, chunkHead, decode, encode, fragmentedChunk } from '../../server/ws/codec.js'

const unpackr = new Unpackr({ ...WIRE_OPTIONS })

t.test('the chunk header is 8-byte aligned, fixed-size MessagePack ending in a bin 32 prefix', async (t) => {
  t.equal(CHUNK_HEAD_BYTES % 8, 0)
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: 4096 }), (stream, offset, length) => {
    const head = chunkHead(stream, offset, length)
    if (head.length !== CHUNK_HEAD_BYTES || head[CHUNK_HEAD_BYTES - 5] !== 0xc6) return false
    const message = unpackr.unpack(Buffer.concat([head, Buffer.alloc(length, 9)]))
    return message.op === 'chunk' && message.stream === stream && message.offset === offset &&
      message.data.length === length && Object.keys(message).join() === 'op,stream,offset,data'
  }))
  const target = Buffer.alloc(CHUNK_HEAD_BYTES + 10)
  t.equal(writeChunkHead(target, 10, 1, 2, 3), CHUNK_HEAD_BYTES, 'writes at an offset')
})

t.test('the frame head is a WebSocket header for the whole message followed by the chunk header', async (t) => {
  for (const [length, wsHead] of [[10, 2], [70000, 10], [200, 4]] as const) {
    const head = chunkFrameHead(3, 0, length)
    t.equal(head.length, wsHead + CHUNK_HEAD_BYTES)
    t.equal(head[0], 0x82, 'FIN, binary, unmasked')
    const total = CHUNK_HEAD_BYTES + length
    const declared = wsHead === 2 ? head[1] : wsHead === 4 ? head.readUInt16BE(2) : head.readUInt32BE(6)
    t.equal(declared, total)
    t.same(head.subarray(wsHead), chunkHead(3, 0, length))
  }
})

t.test('encodeBinHead writes strings and unsigned integers of any width', async (t) => {
  for (const req of [0, 127, 128, 65536, 0xffffffff, 2 ** 40, 'abc', 'x'.repeat(40)]) {
    const head = encodeBinHead({ op: 'chunk', req, offset: 2 ** 33 }, 3)
    t.same(unpackr.unpack(Buffer.concat([head, Buffer.from([1, 2, 3])])), { op: 'chunk', req, offset: 2 ** 33, data: Buffer.from([1, 2, 3]) })
  }
  t.throws(() => encodeBinHead({ n: -1 }, 0), RangeError)
  t.throws(() => encodeBinHead({ n: 1.5 }, 0), RangeError)
  t.throws(() => encodeBinHead({ s: 'x'.repeat(300) }, 0), RangeError)
  t.throws(() => encodeBinHead(Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i])), 0), RangeError)
})

t.test('control messages: integers as integers, undefined as nil, fixmaps, nothing msgpackr-specific', async (t) => {
  const bytes = encode({ op: 'deleted', req: 2 ** 33, id: 'a' })
  const message = unpackr.unpack(bytes)
  t.equal(message.req, 2 ** 33)
  t.ok(bytes.includes(0xd3) || bytes.includes(0xcf), '64-bit integer format, not float 64')
  t.notOk(bytes.includes(0xcb), 'no float 64')
  t.equal(bytes[0], 0x83, 'fixmap')
  const undef = encode({ op: 'error', req: null, code: 'PXP_ERR_INTERNAL', message: 'x', stream: undefined } as never)
  t.notOk(undef.includes(0xd4), 'no fixext for undefined')
  t.same(decode(encode({ op: 'images', req: 'r', images: [], next: null })), { op: 'images', req: 'r', images: [], next: null })
  t.throws(() => decode(Buffer.from([0xc1])), { code: 'PXP_ERR_PROTOCOL' })
})

t.test('every schema is strict-clean and every close code is a valid WebSocket code', async (t) => {
  t.ok(Object.keys(CLIENT_MESSAGE_SCHEMAS).length >= 12)
  t.ok(Object.keys(SERVER_MESSAGE_SCHEMAS).length >= 11)
  for (const [code, spec] of Object.entries(ERRORS)) {
    const c = spec.closeCode
    const valid = (c >= 1000 && c <= 1014 && ![1004, 1005, 1006].includes(c)) || (c >= 3000 && c <= 4999)
    t.ok(valid, `${code}: close code ${c}`)
  }
})

/** Parse WebSocket frames (server to client: unmasked) from bytes. */
function frames (bytes: Buffer): Array<{ fin: boolean, opcode: number, payload: Buffer }> {
  const out = []
  let at = 0
  while (at < bytes.length) {
    const fin = (bytes[at] & 0x80) !== 0
    const opcode = bytes[at] & 0x0f
    let length = bytes[at + 1] & 0x7f
    let p = at + 2
    if (length === 126) { length = bytes.readUInt16BE(p); p += 2 } else if (length === 127) { length = bytes.readUInt32BE(p + 4); p += 8 }
    out.push({ fin, opcode, payload: bytes.subarray(p, p + length) })
    at = p + length
  }
  return out
}

t.test('a fragmented chunk is one message in frames of at most fragmentSize, payload not copied', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 1024, max: 70000 }), fc.nat({ max: 200000 }), fc.nat({ max: 1e9 }), (fragmentSize, length, offset) => {
    const payload = Buffer.alloc(length)
    for (let i = 0; i < length; i += 97) payload[i] = i & 0xff
    const parts = fragmentedChunk(9, offset, payload, fragmentSize)
    // Every payload part is a view of the payload.
    for (let i = 1; i < parts.length; i += 2) if (parts[i].buffer !== payload.buffer) return false
    const list = frames(Buffer.concat(parts))
    if (list[0].opcode !== 2 || !list.at(-1)!.fin) return false
    if (list.slice(1).some((f) => f.opcode !== 0) || list.slice(0, -1).some((f) => f.fin)) return false
    if (list.some((f) => f.payload.length > fragmentSize)) return false
    const message = Buffer.concat(list.map((f) => f.payload))
    const m = unpackr.unpack(message)
    return m.op === 'chunk' && m.stream === 9 && m.offset === offset && Buffer.from(m.data).equals(payload) &&
      readChunkHead(list[0].payload)?.length === length
  }), { numRuns: 200 })
  t.pass('frames reassemble to the chunk message')
})

t.test('readChunkHead reads the fixed header and refuses anything else', async (t) => {
  t.same(readChunkHead(chunkHead(7, 2 ** 40, 123)), { stream: 7, offset: 2 ** 40, length: 123 })
  t.equal(readChunkHead(chunkHead(7, 0, 1).subarray(0, CHUNK_HEAD_BYTES - 1)), null, 'too short')
  for (let i = 0; i < CHUNK_HEAD_BYTES; i++) {
    const head = chunkHead(7, 0, 1)
    if ([18, 19, 20, 21, 30, 31, 32, 33, 34, 35, 36, 37, 44, 45, 46, 47].includes(i)) continue // value bytes
    head[i] ^= 0x01
    if (readChunkHead(head) !== null) t.fail(`byte ${i} altered, still read`)
  }
  t.equal(readChunkHead(encodeBinHead({ op: 'chunk', stream: 1, offset: 0 }, 3)), null, 'another (valid) encoding: decode it generically')
})
