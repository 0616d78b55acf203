/**
 * Fuzzing the WebSocket endpoint of a real server: random bytes, mutated and truncated MessagePack, JSON,
 * chunk headers declaring huge lengths, deep nesting, oversized messages, and structured requests with
 * hostile field values (uploads with wrong offsets and counts, regions outside images, bad specs, …).
 *
 * For every frame the server must answer with a registry error or close with the documented close code
 * for the error it names; afterwards it must still serve, its store must be consistent, and once the
 * clients are gone and the images deleted it must hold no memory, snapshot, staging buffer or connection.
 */
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { ERRORS } from '../../protocol/errors.js'
import { encodeBinHead } from '../../protocol/messages.js'
import { fuzzSettings } from '../helpers/fuzz.js'
import { startServer } from '../helpers/server.js'
import { pack, WireClient, type Closed } from '../helpers/wire-client.js'
import { checkConsistent, checkNoLeaks, FUZZ_SERVER_OPTIONS, seedImages } from '../helpers/invariants.js'

/** A frame to send: bytes as a binary message, a string as a text message. */
type Frame = Uint8Array | string

const IDS = ['seed/l', 'seed/rgb', 'seed/f4', 'seed/frames', 'seed/l/v', 'seed/lines', 'fz/a', 'fz/b', 'fz/c', 'missing']
const HOSTILE_IDS = ['', '..', '../etc/passwd', '/abs', 'a//b', 'a\0b', 'a\\b', 'x'.repeat(129), '.hidden', 'é']

const id = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...IDS) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_IDS) })
const req = fc.oneof({ weight: 8, arbitrary: fc.nat(30) }, { weight: 1, arbitrary: fc.constantFrom<unknown>('r', -1, 1.5, null, [], { toString: 1 }, 'x'.repeat(65)) })
/** Mostly sensible numbers, sometimes the edges and wrong types. */
const small = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 4097, 2 ** 32, 2 ** 53, 1.5, '8', null, true) },
)
const mode = fc.constantFrom<unknown>('L', 'RGB', 'RGBA', 'I;16', 'F', '1', 'XYZ', 7)
const typestr = fc.constantFrom<unknown>('|u1', '<u2', '>f4', '<f8', '<i8', 'u1', '<c8', '', 7)
const shape = fc.oneof(fc.array(small, { minLength: 1, maxLength: 4 }), fc.constantFrom<unknown>([], [1, 1, 1, 1, 1, 1, 1, 1, 1], 'x', [2 ** 20, 2 ** 20]))
const region = fc.record({ x: small, y: small, width: small, height: small }, { requiredKeys: [] })

/** Structured requests of every op, with plausible and hostile values. */
const request: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ op: fc.constant('list'), req }),
  fc.record({ op: fc.constantFrom('describe', 'delete'), req, id }),
  fc.record({ op: fc.constant('hello'), req, protocol: fc.constantFrom(1, 1, 0, 2), fragmentSize: fc.constantFrom(1024, 4096, 10, 2 ** 32) }, { requiredKeys: ['op', 'req', 'protocol'] }),
  fc.record({ op: fc.constant('create'), req, id, width: small, height: small, mode, shape, typestr, layout: fc.constantFrom('block', 'lines', 'tiles'), readonly: fc.boolean(), frames: fc.constantFrom(1, 2, 8, 9, 0) },
    { requiredKeys: ['op', 'req'] }),
  fc.record({ op: fc.constant('get'), req, id, generation: fc.constantFrom(0, 1, 2, 2 ** 32 - 1), region }, { requiredKeys: ['op', 'req', 'id'] }),
  fc.record({ op: fc.constant('subscribe'), req, ids: fc.array(id, { minLength: 1, maxLength: 3 }), policy: fc.constantFrom('latest', 'all'), data: fc.boolean(), queue: fc.constantFrom(1, 2, 64, 5000) },
    { requiredKeys: ['op', 'req'] }),
  fc.record({ op: fc.constant('unsubscribe'), req, sub: fc.nat(6) }),
  fc.record({ op: fc.constantFrom('cancel', 'end'), req }),
  fc.record({ op: fc.constant('chunk'), req, offset: fc.nat(100), data: fc.uint8Array({ maxLength: 64 }) }),
  // Creates that mostly pass validation, to reach the store's own refusals (exists, capacity, too large).
  fc.record({ op: fc.constant('create'), req, id, width: fc.integer({ min: 1, max: 1024 }), height: fc.integer({ min: 1, max: 1024 }), mode: fc.constantFrom('L', 'RGBA', 'F'), layout: fc.constantFrom('block', 'lines'), readonly: fc.boolean(), frames: fc.integer({ min: 1, max: 3 }) },
    { requiredKeys: ['op', 'req', 'width', 'height', 'mode'] }),
  // Values that are neither what the schema wants nor ordinary JSON: maps whose toString is not a function.
  fc.record({ op: fc.constantFrom<unknown>('list', 'get', { toString: 1 }, { toString: 1, valueOf: 1 }, [[]], 5, null), req, id: fc.constantFrom<unknown>({ toString: 1 }, ['a'], 'seed/l') }),
)

/** An inline put whose byte count is right most of the time. */
const inlinePut = fc.record({ req, id, h: fc.integer({ min: 1, max: 16 }), w: fc.integer({ min: 1, max: 16 }), t: fc.constantFrom('|u1', '<u2', '<f4'), delta: fc.constantFrom(0, 0, 0, -1, 1, 64) })
  .map(({ req, id, h, w, t, delta }): Frame[] => {
    const n = Math.max(0, h * w * Number(t.slice(2)) + delta)
    return [pack({ op: 'put', req, id, shape: [h, w], typestr: t, data: Buffer.alloc(n, 0xab) })]
  })

/** A chunked put: header, chunks, end — sometimes with a chunk dropped, repeated or misplaced, or no end. */
const chunkedPut = fc.record({
  req: fc.nat(30),
  id,
  h: fc.integer({ min: 1, max: 64 }),
  w: fc.integer({ min: 1, max: 64 }),
  pieces: fc.integer({ min: 1, max: 4 }),
  fault: fc.constantFrom('none', 'none', 'drop', 'repeat', 'offset', 'extra', 'noEnd', 'cancel'),
}).map(({ req, id, h, w, pieces, fault }): Frame[] => {
  const total = h * w * 3
  const frames: Frame[] = [pack({ op: 'put', req, id, width: w, height: h, mode: 'RGB', byteLength: total })]
  const step = Math.ceil(total / pieces)
  for (let offset = 0, i = 0; offset < total; offset += step, i++) {
    const data = Buffer.alloc(Math.min(step, total - offset), i)
    if (fault === 'drop' && i === 1) continue
    frames.push(Buffer.concat([encodeBinHead({ op: 'chunk', req, offset: fault === 'offset' && i === 0 ? 1 : offset }, data.length), data]))
    if (fault === 'repeat') frames.push(frames[frames.length - 1])
  }
  if (fault === 'extra') frames.push(pack({ op: 'chunk', req, offset: total, data: Buffer.alloc(3) }))
  if (fault === 'cancel') frames.push(pack({ op: 'cancel', req }))
  if (fault !== 'noEnd') frames.push(pack({ op: 'end', req }))
  return frames
})

/** msgpack `{op: 'list', req: 1, x: <depth nested arrays or maps>}`. */
function deeplyNested (depth: number, unit: readonly number[]): Buffer {
  const head = Buffer.from([0x83, 0xa2, 0x6f, 0x70, 0xa4, 0x6c, 0x69, 0x73, 0x74, 0xa3, 0x72, 0x65, 0x71, 0x01, 0xa1, 0x78])
  const body = Buffer.alloc(depth * unit.length)
  for (let i = 0; i < body.length; i++) body[i] = unit[i % unit.length]
  return Buffer.concat([head, body, Buffer.from([0xc0])])
}

const packed = request.map((m) => pack(m))

/** Every kind of frame, each as the list of frames it is sent as. */
const frames: fc.Arbitrary<Frame[]> = fc.oneof(
  { weight: 6, arbitrary: packed.map((b) => [b]) },
  { weight: 2, arbitrary: inlinePut },
  { weight: 2, arbitrary: chunkedPut },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => [b]) },
  { weight: 2, arbitrary: fc.tuple(packed, fc.nat(), fc.nat(255)).map(([b, at, v]) => { const c = Buffer.from(b); c[at % c.length] = v; return [c] }) },
  { weight: 1, arbitrary: fc.tuple(packed, fc.nat()).map(([b, n]) => [b.subarray(0, n % b.length)]) },
  { weight: 1, arbitrary: request.map((m) => [JSON.stringify(m)]) },
  { weight: 1, arbitrary: request.map((m) => [Buffer.from(JSON.stringify(m))]) },
  // A chunk header declaring far more bytes than follow (or than any message may carry).
  { weight: 1, arbitrary: fc.tuple(fc.nat(30), fc.constantFrom(2 ** 32 - 1, 2 ** 31, 16 * 1024 * 1024, 200 * 1024), fc.nat(64))
    .map(([r, length, n]) => [Buffer.concat([encodeBinHead({ op: 'chunk', req: r, offset: 0 }, length), Buffer.alloc(n)])]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom([0x91], [0x81, 0xa1, 0x61], [0xdc, 0x00, 0x01]), fc.integer({ min: 1_000, max: 20_000 })).map(([unit, depth]) => [deeplyNested(depth, unit)]) },
  { weight: 1, arbitrary: fc.constantFrom(129 * 1024, 1024 * 1024).map((n) => [pack({ op: 'put', req: 1, id: 'fz/big', shape: [n], typestr: '|u1', data: Buffer.alloc(n) })]) },
)

/** Close codes the protocol documents: the registry's for the error named in the reason, or 1009 (too big). */
function checkClose (t: Test, closed: Closed, what: string): void {
  const named = Object.hasOwn(ERRORS, closed.reason) ? ERRORS[closed.reason as keyof typeof ERRORS] : undefined
  const ok = closed.code === 1009 || (named !== undefined && named.closeCode === closed.code)
  if (!ok) t.fail(`${what}: undocumented close ${closed.code} ${JSON.stringify(closed.reason)}`)
}

/** Every error a client received names a registry code, none of them an internal error. */
function checkErrors (t: Test, clients: WireClient[], tally: Map<string, number>): void {
  for (const c of clients) {
    for (const m of c.messages) {
      if (m.op !== 'error') continue
      tally.set(m.code, (tally.get(m.code) ?? 0) + 1)
      if (!Object.hasOwn(ERRORS, m.code) || m.code === 'PXP_ERR_INTERNAL') t.fail(`error ${m.code}: ${m.message}`)
    }
    if (c.invalid.length > 0) t.fail(`server sent ${c.invalid.length} messages off their schema: ${JSON.stringify(c.invalid[0]).slice(0, 300)}`)
  }
}

t.test('WebSocket fuzz: every frame answered or closed as documented, then no crash, no leak', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const { server, url } = await startServer(t, FUZZ_SERVER_OPTIONS)
  seedImages(server)
  const clients: WireClient[] = []
  const connect = async (): Promise<WireClient> => {
    const c = await WireClient.connect(t, url)
    clients.push(c)
    return c
  }
  let client = await connect()
  let probe = 1_000_000
  const closes = new Map<string, number>()

  await fc.assert(fc.asyncProperty(frames, async (list) => {
    if (client.ws.readyState !== client.ws.OPEN) client = await connect()
    for (const f of list) if (client.ws.readyState === client.ws.OPEN) client.sendRaw(f)
    // The server handles one connection's messages in order: once the probe is answered, so was every
    // frame before it (or the connection was closed because of one).
    const p = ++probe
    if (client.ws.readyState === client.ws.OPEN) client.send({ op: 'list', req: p })
    const outcome = await Promise.race([client.next((m) => m.req === p).then(() => null), client.closed])
    if (outcome !== null) {
      checkClose(t, outcome, `frames ${list.map((f) => Buffer.from(f).subarray(0, 24).toString('hex')).join(' ')}`)
      const key = `${outcome.code} ${outcome.reason}`
      closes.set(key, (closes.get(key) ?? 0) + 1)
    }
  }), { seed, numRuns: runs(400) })

  // A burst: several connections sending at once without waiting, interleaving uploads, gets and subscriptions.
  const burst = fc.sample(frames, { seed: seed + 1, numRuns: runs(150) })
  const bursters = await Promise.all([connect(), connect(), connect()])
  bursters.forEach((c, i) => { for (const list of burst.slice(i * 50, i * 50 + 50)) for (const f of list) if (c.ws.readyState === c.ws.OPEN) c.sendRaw(f) })
  await Promise.all(bursters.map(async (c) => {
    if (c.ws.readyState !== c.ws.OPEN) return
    c.send({ op: 'list', req: 'burst' })
    await Promise.race([c.next((m) => m.req === 'burst'), c.closed])
  }))

  const tally = new Map<string, number>()
  checkErrors(t, clients, tally)
  t.comment(`errors: ${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')}`)
  t.comment(`closes: ${[...closes].map(([k, n]) => `${k} ×${n}`).join(', ')}`)
  t.ok(tally.size >= 5, 'the fuzzer reached many kinds of error')

  // The server still speaks the protocol to a newcomer.
  const fresh = await connect()
  t.equal((await fresh.request({ op: 'list' })).op, 'images', 'a new client is served')
  await checkConsistent(t, server, url)
  for (const c of clients) c.ws.terminate()
  await checkNoLeaks(t, server)
})
