/**
 * Malformed input never crashes the server: framing errors close with the documented code, content errors
 * are answered and the connection goes on, and a fuzzer's random bytes change nothing.
 */
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { encodeBinHead } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { pack, WireClient } from '../helpers/wire-client.js'

/** The server still answers a fresh client. */
async function stillUp (t: Test, url: string): Promise<void> {
  const probe = await WireClient.connect(t, url)
  const reply = await probe.request({ op: 'list' })
  t.equal(reply.op, 'images', 'server still up')
  probe.ws.close()
}

t.test('framing errors: an error message, then close 1002 with the code as reason', async (t) => {
  const { url } = await startServer(t)
  const cases: Array<[string, Uint8Array | string]> = [
    ['not MessagePack (reserved byte 0xc1)', Buffer.from([0xc1, 0x00])],
    ['truncated map', Buffer.from([0x82, 0xa2, 0x6f, 0x70])],
    ['trailing bytes after one value', Buffer.concat([pack({ op: 'list', req: 1 }), Buffer.from([0xc0])])],
    ['an array, not a map', pack(['list', 1])],
    ['an integer', pack(42)],
    ['a bare bin', pack(Buffer.from([1, 2, 3]))],
    ['nil', Buffer.from([0xc0])],
    ['the never-used byte 0xc1', Buffer.from([0xc1])],
    ['an extension type (timestamp)', Buffer.from([0xd6, 0xff, 0, 0, 0, 1])],
    ['empty message', Buffer.alloc(0)],
    ['a text frame', JSON.stringify({ op: 'list', req: 1 })],
    ['nesting deeper than the decoder recurses', Buffer.alloc(1 << 20, 0x91)],
  ]
  for (const [name, bytes] of cases) {
    const c = await WireClient.connect(t, url)
    c.sendRaw(bytes)
    const closed = await c.closed
    t.same(closed, { code: 1002, reason: 'PXP_ERR_PROTOCOL' }, `${name}: closed with 1002`)
    t.match(c.messages, [{ op: 'error', req: null, code: 'PXP_ERR_PROTOCOL', message: String }], `${name}: told why`)
  }
  await stillUp(t, url)
})

t.test('content errors are answered with the request id and the connection stays open', async (t) => {
  const { url } = await startServer(t)
  const c = await WireClient.connect(t, url)
  const cases: Array<[Record<string, unknown>, string, RegExp?]> = [
    [{ op: 'teleport', req: 1 }, 'PXP_ERR_UNKNOWN_OP', /teleport/],
    [{ req: 2 }, 'PXP_ERR_UNKNOWN_OP'],
    [{ op: 42, req: 3 }, 'PXP_ERR_UNKNOWN_OP'],
    [{ op: 'describe', req: 4 }, 'PXP_ERR_VALIDATION', /describe: message needs the field "id"$/],
    [{ op: 'describe', req: 5, id: 7 }, 'PXP_ERR_VALIDATION', /id must be string/],
    [{ op: 'describe', req: 6, id: '../etc' }, 'PXP_ERR_BAD_ID', /"\.\.\/etc"/],
    [{ op: 'subscribe', req: 6, ids: ['ok', 'a//b'] }, 'PXP_ERR_BAD_ID', /"a\/\/b"/],
    [{ op: 'list', req: 7, extra: true }, 'PXP_ERR_VALIDATION', /unknown field "extra"/],
    [{ op: 'create', req: 8, width: -1, height: 2, mode: 'L' }, 'PXP_ERR_VALIDATION', /width must be >= 1/],
    [{ op: 'create', req: 9, width: 1.5, height: 2, mode: 'L' }, 'PXP_ERR_VALIDATION', /width must be integer/],
    [{ op: 'create', req: 10, width: '640', height: 2, mode: 'L' }, 'PXP_ERR_VALIDATION', /must be integer/],
    [{ op: 'put', req: 11, id: 'x', data: 'not bytes' }, 'PXP_ERR_VALIDATION', /data must be MessagePack bin/],
    [{ op: 'get', req: 12, id: 'x', region: { x: 0, y: 0, width: 0, height: 1 } }, 'PXP_ERR_VALIDATION', /region.width/],
    [{ op: 'get', req: 13, id: 'x', generation: -1 }, 'PXP_ERR_VALIDATION'],
    [{ op: 'subscribe', req: 14, policy: 'some' }, 'PXP_ERR_VALIDATION', /subscribe: policy must be one of "latest", "all"$/],
    [{ op: 'subscribe', req: 15, ids: [] }, 'PXP_ERR_VALIDATION'],
    [{ op: 'hello', req: 16 }, 'PXP_ERR_VALIDATION', /protocol/],
    [{ op: 'list', req: -1 }, 'PXP_ERR_VALIDATION'],
    [{ op: 'list', req: 'x'.repeat(65) }, 'PXP_ERR_VALIDATION'],
    [JSON.parse('{ "op": "describe", "req": 17, "id": "a", "__proto__": { "polluted": true } }'), 'PXP_ERR_VALIDATION', /unknown field/],
  ]
  for (const [message, code, text] of cases) {
    c.send(message)
    const reply = await c.next()
    const req = typeof message.req === 'number' && message.req >= 0 ? message.req : typeof message.req === 'string' && message.req.length <= 64 ? message.req : null
    t.match(reply, { op: 'error', req, code, ...(text !== undefined ? { message: text } : {}) }, `${JSON.stringify(message).slice(0, 70)} → ${code}`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  // 64-bit integers decode to values the schemas refuse, not to crashes. (A nested extension type is a
  // framing error: test/security/ws-strict-values.test.ts.)
  c.sendRaw(Buffer.concat([Buffer.from([0x83, 0xa2, 0x6f, 0x70, 0xa4]), Buffer.from('list'), Buffer.from([0xa3]), Buffer.from('req'), Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xa1, 0x78, 0x01])]))
  t.match(await c.next(), { op: 'error', code: 'PXP_ERR_VALIDATION' })
  t.equal((await c.request({ op: 'list' })).op, 'images', 'connection still open')
  t.same(c.invalid, [])
})

t.test('a message over maxMessageBytes closes the connection with 1009', async (t) => {
  const { url } = await startServer(t, { maxMessageBytes: 64 * 1024, chunkSize: 16 * 1024 })
  const c = await WireClient.connect(t, url)
  c.send({ op: 'put', req: 1, id: 'big', shape: [64 * 1024 + 16], typestr: '|u1', data: Buffer.alloc(64 * 1024 + 16) })
  t.equal((await c.closed).code, 1009)
  await stillUp(t, url)
})

t.test('fuzz: random bytes and mutated valid messages never take the server down', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'f', width: 8, height: 8, mode: 'L' })
  const valid = [
    pack({ op: 'list', req: 1 }),
    pack({ op: 'get', req: 2, id: 'f', region: { x: 1, y: 1, width: 2, height: 2 } }),
    pack({ op: 'put', req: 3, id: 'f', data: Buffer.alloc(64) }),
    pack({ op: 'subscribe', req: 4, ids: ['f'], policy: 'all', data: true, queue: 2 }),
    Buffer.concat([encodeBinHead({ op: 'chunk', req: 5, offset: 0 }, 4), Buffer.alloc(4)]),
  ]
  const c = await WireClient.connect(t, url)
  let client = c
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([m, at, v]) => {
        const copy = Buffer.from(m)
        copy[at % copy.length] = v
        return copy
      }),
      fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([m, n]) => m.subarray(0, n % m.length)),
    ),
    async (bytes) => {
      if (client.ws.readyState !== client.ws.OPEN) client = await WireClient.connect(t, url)
      client.sendRaw(bytes)
      // Every message is answered (or ends the connection) before the next one is looked at.
      const probe = client.req() + 1000
      client.send({ op: 'list', req: probe })
      await Promise.race([client.next((m) => m.req === probe), client.closed])
    },
  ), { numRuns: 300 })
  await stillUp(t, url)
  t.same(server.snapshots.stats().snapshots <= 1, true, 'no snapshots pile up')
})
