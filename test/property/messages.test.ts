/**
 * The WebSocket message validator, by property: any bytes and any MessagePack value give either a typed
 * message that satisfies its schema or a registry error of the documented kind (PXP_ERR_PROTOCOL and fatal
 * for framing; PXP_ERR_UNKNOWN_OP, PXP_ERR_BAD_ID or PXP_ERR_VALIDATION and not fatal for content) — never an
 * exception. Well-formed messages are always accepted as they were sent.
 */
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import t from 'tap'
import { WIRE_OPTIONS } from '../../protocol/messages.js'
import { CLIENT_OPS } from '../../protocol/wire/client-messages.js'
import { MessageValidator, type Parsed } from '../../server/ws/validate.js'
import { fuzzSettings, isRegistryError } from '../helpers/fuzz.js'
import { validId } from '../helpers/arbitraries.js'

const packr = new Packr({ ...WIRE_OPTIONS })
const validator = new MessageValidator()

const CONTENT_CODES = ['PXP_ERR_UNKNOWN_OP', 'PXP_ERR_BAD_ID', 'PXP_ERR_VALIDATION']

/** Parse, and check the outcome is one of the documented ones. */
function parseChecked (bytes: Uint8Array): Parsed {
  let parsed: Parsed
  try {
    parsed = validator.parse(bytes, true)
  } catch (err) {
    throw new Error(`parse threw ${(err as Error)?.name}: ${(err as Error)?.message}`)
  }
  if (parsed.ok) {
    if (!CLIENT_OPS.includes(parsed.message.op)) throw new Error(`accepted op ${String(parsed.message.op)}`)
    return parsed
  }
  if (!isRegistryError(parsed.error)) throw new Error(`not a registry error: ${String(parsed.error)}`)
  const framing = parsed.error.code === 'PXP_ERR_PROTOCOL'
  if (!framing && !CONTENT_CODES.includes(parsed.error.code)) throw new Error(`unexpected ${parsed.error.code}`)
  if (parsed.fatal !== framing) throw new Error(`${parsed.error.code} with fatal=${parsed.fatal}`)
  if (parsed.req !== null && !(typeof parsed.req === 'string' || Number.isSafeInteger(parsed.req))) throw new Error('bad req echoed')
  if (parsed.error.message.length > 4096) throw new Error(`message of ${parsed.error.message.length} characters`)
  return parsed
}

const req = fc.oneof(fc.nat(), fc.string({ minLength: 1, maxLength: 64 }))
const region = fc.record({ x: fc.nat(100), y: fc.nat(100), width: fc.integer({ min: 1, max: 100 }), height: fc.integer({ min: 1, max: 100 }) })

/** Well-formed client messages of every op. */
const wellFormed = fc.oneof(
  fc.record({ op: fc.constant('hello'), req, protocol: fc.nat(5) }),
  fc.record({ op: fc.constant('list'), req }),
  fc.record({ op: fc.constantFrom('describe', 'delete'), req, id: validId }),
  fc.record({ op: fc.constant('get'), req, id: validId, generation: fc.nat(), region }, { requiredKeys: ['op', 'req', 'id'] }),
  fc.record({ op: fc.constant('create'), req, id: validId, width: fc.integer({ min: 1, max: 9 }), height: fc.integer({ min: 1, max: 9 }), mode: fc.constantFrom('L', 'RGB') }, { requiredKeys: ['op', 'req'] }),
  fc.record({ op: fc.constant('put'), req, id: validId, shape: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }), typestr: fc.constant('|u1'), data: fc.uint8Array({ maxLength: 16 }) }, { requiredKeys: ['op', 'req'] }),
  fc.record({ op: fc.constant('chunk'), req, offset: fc.nat(), data: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constantFrom('end', 'cancel'), req }),
  fc.record({ op: fc.constant('subscribe'), req, ids: fc.array(validId, { minLength: 1, maxLength: 4 }), policy: fc.constantFrom('latest', 'all'), data: fc.boolean(), queue: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: ['op', 'req'] }),
  fc.record({ op: fc.constant('unsubscribe'), req, sub: fc.nat() }),
)

/** Values of every MessagePack type, including ones the protocol never uses. */
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1, 2 ** 32, 2 ** 53 + 2, -(2 ** 63), 1.5, NaN, Infinity),
    fc.integer(), fc.double(), fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }),
    fc.constantFrom(...CLIENT_OPS, 'toString', '__proto__', 'constructor', 'hasOwnProperty'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(fc.constantFrom('op', 'req', 'id', 'ids', 'data', 'toString', 'valueOf', '__proto__', 'constructor', 'length'), fc.string({ maxLength: 8 })),
      tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value

/** A well-formed message with one field replaced, added or removed. */
const mutated = fc.tuple(wellFormed, fc.constantFrom('op', 'req', 'id', 'ids', 'data', 'offset', 'width', 'shape', 'region', 'extra', 'toString'), fc.option(anyValue, { nil: undefined }))
  .map(([m, key, value]) => {
    const copy: Record<string, unknown> = { ...m }
    if (value === undefined) delete copy[key]
    else copy[key] = value
    return copy
  })

t.test('well-formed messages are accepted unchanged', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  fc.assert(fc.property(wellFormed, (message) => {
    const parsed = parseChecked(packr.pack(message))
    if (!parsed.ok) throw new Error(`refused with ${parsed.error.code}: ${parsed.error.message}`)
    if (parsed.message.op !== message.op || parsed.message.req !== message.req) throw new Error('op or req changed')
  }), { seed, numRuns: runs(1000) })
  t.pass('accepted')
})

t.test('any MessagePack value or mutated message: a typed message or a registry error, never a throw', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const codes = new Map<string, number>()
  fc.assert(fc.property(fc.oneof(anyValue, mutated, mutated.map((m) => ({ [typeof m.op === 'string' ? m.op : 'op']: m }))), (value) => {
    const parsed = parseChecked(packr.pack(value))
    const key = parsed.ok ? 'ok' : parsed.error.code
    codes.set(key, (codes.get(key) ?? 0) + 1)
    if (parsed.ok && (value === null || typeof value !== 'object' || Array.isArray(value))) throw new Error('accepted a non-map')
  }), { seed, numRuns: runs(3000) })
  t.comment([...codes].map(([k, n]) => `${k}: ${n}`).join(', '))
  for (const code of ['ok', 'PXP_ERR_PROTOCOL', 'PXP_ERR_UNKNOWN_OP', 'PXP_ERR_BAD_ID', 'PXP_ERR_VALIDATION']) t.ok(codes.has(code), `saw ${code}`)
})

t.test('any bytes — random, truncated, mutated, deeply nested: the same', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const packed = wellFormed.map((m) => packr.pack(m))
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(packed, fc.nat()).map(([b, n]) => b.subarray(0, n % b.length)),
    fc.tuple(packed, fc.nat(), fc.nat(255)).map(([b, at, v]) => { const c = Buffer.from(b); c[at % c.length] = v; return c }),
    fc.tuple(packed, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([b, tail]) => Buffer.concat([b, tail])),
    // Deep nesting: arrays, maps and map keys, 10k to 200k levels.
    fc.tuple(fc.constantFrom([0x91], [0x81, 0xa1, 0x61], [0x81], [0xdc, 0x00, 0x01]), fc.integer({ min: 10_000, max: 100_000 }))
      .map(([unit, depth]) => Buffer.concat([Buffer.from([0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x6c, 0x69, 0x73, 0x74, 0xa3, 0x72, 0x65, 0x71]), Buffer.alloc(depth * unit.length).map((_, i) => unit[i % unit.length]), Buffer.from([0x01])])),
    // Declared lengths far past the bytes that follow: str 32, bin 32, array 32, map 32.
    fc.tuple(fc.constantFrom(0xdb, 0xc6, 0xdd, 0xdf), fc.nat()).map(([type, n]) => Buffer.from([0x81, 0xa2, 0x6f, 0x70, type, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, 1, 2, 3])),
  )
  fc.assert(fc.property(bytes, (b) => { parseChecked(b) }), { seed, numRuns: runs(1000) })
  t.pass('no throw')
  const text = validator.parse(Buffer.from('{"op":"list","req":1}'), false)
  t.match(text, { ok: false, fatal: true, error: { code: 'PXP_ERR_PROTOCOL' } }, 'a text frame is a framing error')
})
