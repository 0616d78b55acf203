/**
 * On a server with tokens, a connection that presented none at the upgrade must open with a valid
 * `hello { token }`. Anything else first — an unknown op, a malformed hello, garbage, another request —
 * is answered PXP_ERR_UNAUTHORIZED and closed with 4401 at once, not left open until the auth deadline.
 * (It used to get PXP_ERR_UNKNOWN_OP or PXP_ERR_VALIDATION and stay open for the 5 s timer.)
 */
import t from 'tap'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { pack, WireClient, type Closed } from '../helpers/wire-client.js'

const TOKEN = 't'.repeat(32)
/** The auth deadline is far away: a close within CLOSE_WITHIN_MS can only be the server's answer. */
const AUTH_TIMEOUT_MS = 60_000
const CLOSE_WITHIN_MS = 3_000

async function closedWithin (c: WireClient, what: string): Promise<Closed> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: connection still open ${CLOSE_WITHIN_MS} ms after the first message`)), CLOSE_WITHIN_MS)
  })
  try {
    return await Promise.race([c.closed, late])
  } finally {
    clearTimeout(timer)
  }
}

/** A whole-number float where `protocol` (a uint) goes: `{op: hello, req: 1, protocol: 1.0, token}`. */
function helloWithFloatProtocol (): Buffer {
  const marker = 0x7abcdef1
  const bytes = pack({ op: 'hello', req: 1, protocol: marker, token: TOKEN })
  const at = bytes.indexOf(Buffer.from([0xce, 0x7a, 0xbc, 0xde, 0xf1]))
  const float = Buffer.alloc(9)
  float[0] = 0xcb
  float.writeDoubleBE(1, 1)
  return Buffer.concat([bytes.subarray(0, at), float, bytes.subarray(at + 5)])
}

t.test('a first message other than a valid hello: PXP_ERR_UNAUTHORIZED and 4401 at once', async (t) => {
  const { url } = await startServer(t, { tokens: [{ token: TOKEN, scopes: ['admin'] }], authTimeoutMs: AUTH_TIMEOUT_MS })
  const withReq: Array<[string, Record<string, unknown> | Buffer]> = [
    ['an unknown op', { op: 'teleport', req: 1 }],
    ['a request before hello', { op: 'list', req: 1 }],
    ['hello without protocol', { op: 'hello', req: 1, token: TOKEN }],
    ['hello with an unknown field', { op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: TOKEN, extra: 1 }],
    ['hello whose token is not a string', { op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: 42 }],
    ['hello with a float protocol', helloWithFloatProtocol()],
    ['hello with a malformed client field', { op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: TOKEN, client: 'x'.repeat(1000) }],
    ['a describe with a bad id', { op: 'describe', req: 1, id: '../x' }],
    ['hello without a token', { op: 'hello', req: 1, protocol: PROTOCOL_VERSION }],
    ['hello with a wrong token', { op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: 'w'.repeat(32) }],
  ]
  for (const [what, message] of withReq) {
    const c = await WireClient.connect(t, url)
    c.sendRaw(Buffer.isBuffer(message) ? message : pack(message))
    const closed = await closedWithin(c, what)
    t.same(closed, { code: 4401, reason: 'PXP_ERR_UNAUTHORIZED' }, `${what}: closed with 4401`)
    t.match(c.messages, [{ op: 'error', req: 1, code: 'PXP_ERR_UNAUTHORIZED' }], `${what}: told PXP_ERR_UNAUTHORIZED, with its req`)
    t.equal(c.messages.length, 1, `${what}: and nothing else`)
  }
  const noReq: Array<[string, Uint8Array | string]> = [
    ['a message without req', pack({ op: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN })],
    ['bytes that are not MessagePack', Buffer.from([0xc1, 0x00])],
    ['a text frame', JSON.stringify({ op: 'hello', req: 1, protocol: 1, token: TOKEN })],
    ['an array', pack(['hello', 1])],
  ]
  for (const [what, bytes] of noReq) {
    const c = await WireClient.connect(t, url)
    c.sendRaw(bytes)
    const closed = await closedWithin(c, what)
    t.same(closed, { code: 4401, reason: 'PXP_ERR_UNAUTHORIZED' }, `${what}: closed with 4401`)
    t.match(c.messages, [{ op: 'error', req: null, code: 'PXP_ERR_UNAUTHORIZED' }], `${what}: told PXP_ERR_UNAUTHORIZED`)
  }
})

t.test('after a valid hello the usual answers apply, and the connection stays open', async (t) => {
  const { url } = await startServer(t, { tokens: [{ token: TOKEN, scopes: ['admin'] }], authTimeoutMs: AUTH_TIMEOUT_MS })
  const c = await WireClient.connect(t, url)
  t.equal((await c.request({ op: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN })).op, 'welcome')
  t.equal((await c.request({ op: 'teleport' })).code, 'PXP_ERR_UNKNOWN_OP')
  t.equal((await c.request({ op: 'hello' })).code, 'PXP_ERR_VALIDATION')
  t.equal((await c.request({ op: 'list' })).op, 'images', 'still open')
  t.same(c.invalid, [])
})

t.test('without tokens nothing changes: an unknown first op is answered and the connection stays open', async (t) => {
  const { url } = await startServer(t)
  const c = await WireClient.connect(t, url)
  t.equal((await c.request({ op: 'teleport' })).code, 'PXP_ERR_UNKNOWN_OP')
  t.equal((await c.request({ op: 'list' })).op, 'images')
})
