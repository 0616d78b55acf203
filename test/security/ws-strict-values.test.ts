/**
 * Values the spec does not allow are refused, not reinterpreted:
 * - a whole-number float where a uint goes (`width: 4.0`) is PXP_ERR_VALIDATION naming the field
 *   (msgpackr decodes it to the number 4, which the schema alone cannot tell from an int);
 * - an extension type anywhere in a message (a timestamp, which msgpackr decoded into a Date, or any
 *   other) is PXP_ERR_PROTOCOL and close 1002, as is nesting deeper than MAX_NESTING;
 * - the client's decoder refuses extension types from a server too.
 */
import { Packr } from 'msgpackr'
import t from 'tap'
import { decode as clientDecode } from '../../client/remote/codec.js'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { MAX_NESTING, scanMessagePack } from '../../protocol/strict-msgpack.js'
import { startServer } from '../helpers/server.js'
import { pack, WireClient } from '../helpers/wire-client.js'

const MARKER = 0x7abcdef1
const MARKER_BYTES = Buffer.from([0xce, 0x7a, 0xbc, 0xde, 0xf1])

/**
 * `message` packed with its MARKER value (one, anywhere) replaced by `value` as a MessagePack float:
 * float 64, or float 32 with `single`.
 */
function withFloat (message: Record<string, unknown>, value: number, single = false): Buffer {
  const bytes = pack(message)
  const at = bytes.indexOf(MARKER_BYTES)
  if (at < 0 || bytes.indexOf(MARKER_BYTES, at + 1) >= 0) throw new Error('exactly one marker expected')
  const float = Buffer.alloc(single ? 5 : 9)
  float[0] = single ? 0xca : 0xcb
  if (single) float.writeFloatBE(value, 1)
  else float.writeDoubleBE(value, 1)
  return Buffer.concat([bytes.subarray(0, at), float, bytes.subarray(at + 5)])
}

/** `message` with its MARKER value replaced by raw MessagePack bytes. */
function withRaw (message: Record<string, unknown>, raw: number[]): Buffer {
  const bytes = pack(message)
  const at = bytes.indexOf(MARKER_BYTES)
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(raw), bytes.subarray(at + 5)])
}

t.test('a whole-number float where the spec says uint is PXP_ERR_VALIDATION naming the field', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'img', width: 4, height: 4, mode: 'L' })
  const c = await WireClient.connect(t, url)
  const cases: Array<[string, Buffer, RegExp]> = [
    ['create width 4.0', withFloat({ op: 'create', req: 1, id: 'f1', width: MARKER, height: 4, mode: 'L' }, 4), /create: width must be a MessagePack integer/],
    ['create height 4.0 as float 32', withFloat({ op: 'create', req: 2, id: 'f2', width: 4, height: MARKER, mode: 'L' }, 4, true), /height/],
    ['create shape item', withFloat({ op: 'create', req: 3, id: 'f3', shape: [4, MARKER], typestr: '|u1' }, 4), /shape\.1/],
    ['create frames', withFloat({ op: 'create', req: 4, id: 'f4', width: 4, height: 4, mode: 'L', frames: MARKER }, 2), /frames/],
    ['get region.x', withFloat({ op: 'get', req: 5, id: 'img', region: { x: MARKER, y: 0, width: 1, height: 1 } }, 0), /region\.x/],
    ['get generation', withFloat({ op: 'get', req: 6, id: 'img', generation: MARKER }, 0), /generation/],
    ['hello protocol 1.0', withFloat({ op: 'hello', req: 7, protocol: MARKER }, PROTOCOL_VERSION), /protocol/],
    ['hello fragmentSize', withFloat({ op: 'hello', req: 8, protocol: 1, fragmentSize: MARKER }, 4096), /fragmentSize/],
    ['subscribe queue', withFloat({ op: 'subscribe', req: 9, queue: MARKER }, 8), /queue/],
    ['unsubscribe sub', withFloat({ op: 'unsubscribe', req: 10, sub: MARKER }, 1), /sub/],
    ['put byteLength', withFloat({ op: 'put', req: 11, id: 'f5', width: 4, height: 4, mode: 'L', byteLength: MARKER }, 16), /byteLength/],
    ['list limit', withFloat({ op: 'list', req: 12, limit: MARKER }, 10), /limit/],
    ['req itself', withFloat({ op: 'list', req: MARKER }, 13), /req/],
  ]
  for (const [what, bytes, field] of cases) {
    c.sendRaw(bytes)
    const reply = await c.next((m) => m.op === 'error' || m.op === 'descriptor' || m.op === 'welcome' || m.op === 'subscribed' || m.op === 'images' || m.op === 'frame')
    t.equal(reply.code, 'PXP_ERR_VALIDATION', `${what}: refused`)
    t.match(reply.message, field, `${what}: the message names the field`)
  }
  c.sendRaw(withFloat({ op: 'chunk', req: 20, offset: MARKER, data: Buffer.alloc(1) }, 0))
  t.match(await c.next(), { op: 'error', code: 'PXP_ERR_VALIDATION', message: /offset/ }, 'chunk offset 0.0')
  // Nothing was created by any of them, and the connection is still open.
  for (const id of ['f1', 'f2', 'f3', 'f4', 'f5']) t.notOk(server.store.has(id), `${id} not created`)
  t.equal((await c.request({ op: 'create', id: 'ok', width: 4, height: 4, mode: 'L' })).op, 'descriptor', 'integers still work')
  t.same(c.invalid, [])
})

t.test('an extension type anywhere closes with PXP_ERR_PROTOCOL / 1002', async (t) => {
  const { server, url } = await startServer(t)
  server.store.create({ id: 'img', width: 4, height: 4, mode: 'L' })
  // msgpackr's default encoder writes a Date as the timestamp extension (type -1).
  const dates = new Packr({ useRecords: false })
  const cases: Array<[string, Uint8Array]> = [
    ['a timestamp 32 as req', dates.pack({ op: 'list', req: new Date(1000) })],
    ['a timestamp 64 as a field', dates.pack({ op: 'list', req: 1, scope: new Date(1500) })],
    ['a timestamp 96 in a region', withRaw({ op: 'get', req: 1, id: 'img', region: { x: MARKER, y: 0, width: 1, height: 1 } },
      [0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])],
    ['a timestamp as a subscribe id', withRaw({ op: 'subscribe', req: 1, ids: ['a', MARKER] }, [0xd6, 0xff, 0, 0, 0, 1])],
    ['fixext 1 of type 5 as data', withRaw({ op: 'put', req: 1, id: 'x', width: 1, height: 1, mode: 'L', data: MARKER }, [0xd4, 5, 7])],
    ['ext 8 in an unknown field', withRaw({ op: 'list', req: 1, extra: MARKER }, [0xc7, 2, 0x74, 1, 2])],
    ['ext 16 as hello client', withRaw({ op: 'hello', req: 1, protocol: 1, client: MARKER }, [0xc8, 0, 1, 0x10, 9])],
  ]
  for (const [what, bytes] of cases) {
    const c = await WireClient.connect(t, url)
    c.sendRaw(bytes)
    t.same(await c.closed, { code: 1002, reason: 'PXP_ERR_PROTOCOL' }, `${what}: closed with 1002`)
    t.match(c.messages, [{ op: 'error', req: null, code: 'PXP_ERR_PROTOCOL', message: /extension type/ }], `${what}: told why`)
  }
  t.notOk(server.store.has('x'))
})

t.test(`nesting: ${MAX_NESTING} levels are read, one more closes with 1002`, async (t) => {
  const { url } = await startServer(t)
  const nested = (levels: number): unknown => {
    let v: unknown = 'local'
    for (let i = 0; i < levels; i++) v = [v]
    return v
  }
  // The message's own map is level 1: scope holds MAX_NESTING - 1 more arrays, then one too many.
  const ok = await WireClient.connect(t, url)
  ok.send({ op: 'list', req: 1, scope: nested(MAX_NESTING - 1) })
  t.match(await ok.next(), { op: 'error', req: 1, code: 'PXP_ERR_VALIDATION' }, 'deepest allowed: an ordinary content error')
  const deep = await WireClient.connect(t, url)
  deep.send({ op: 'list', req: 1, scope: nested(MAX_NESTING) })
  t.same(await deep.closed, { code: 1002, reason: 'PXP_ERR_PROTOCOL' })
  t.match(deep.messages, [{ code: 'PXP_ERR_PROTOCOL', message: /nesting deeper than 16/ }])
})

t.test('the client refuses extension types from a server', async (t) => {
  const dates = new Packr({ useRecords: false })
  t.throws(() => clientDecode(dates.pack({ op: 'images', req: 1, images: [], next: new Date(0) })), { code: 'PXP_ERR_PROTOCOL' })
  t.throws(() => clientDecode(withRaw({ op: 'deleted', req: 1, id: MARKER }, [0xd4, 0x74, 0])), { code: 'PXP_ERR_PROTOCOL' })
  t.same(clientDecode(pack({ op: 'deleted', req: 1, id: 'a' })), { op: 'deleted', req: 1, id: 'a' }, 'plain messages still decode')
})

t.test('the strict walk: any bytes give a value or PXP_ERR_PROTOCOL; packed plain values pass', async (t) => {
  const fc = (await import('fast-check')).default
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    try {
      scanMessagePack(bytes)
    } catch (err) {
      return (err as { code?: string }).code === 'PXP_ERR_PROTOCOL'
    }
    return true
  }), { seed: 0x5eed, numRuns: 5000 })
  const plain = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, fc.integer(), fc.string(), fc.boolean(), fc.constant(null),
      fc.uint8Array({ maxLength: 8 }), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 })),
  })).value
  fc.assert(fc.property(plain, (value) => scanMessagePack(pack(value)).floatPath === null), { seed: 0x5eed, numRuns: 2000 })
  t.pass('properties hold')
})
