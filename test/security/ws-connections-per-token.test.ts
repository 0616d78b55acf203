/**
 * Issue 12 item 9: the WebSocket connection limit was per client address only, and every 127.x.y.z is
 * another loopback address. Now a token may hold at most maxConnectionsPerToken connections from any
 * address: refused at the upgrade (429) when the token is in the Authorization header, closed with 4429
 * when it comes in `hello`; both PXP_ERR_TOO_MANY_CONNECTIONS, saying which limit was hit.
 */
import t, { type Test } from 'tap'
import { pack, unpack } from 'msgpackr'
import { WebSocket } from 'ws'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { until } from '../helpers/until.js'
import { startServer } from '../helpers/server.js'
import { wsUrl } from '../helpers/wire-client.js'
import { ALL_RW, A_RW, TOKENS } from '../helpers/tokens.js'

type Outcome = { open: true, ws: WebSocket } | { open: false, status: number, body: any }

/** Open a WebSocket from `localAddress`, with the token in the upgrade's header. */
async function upgrade (t: Test, url: string, localAddress: string, token: string): Promise<Outcome> {
  const ws = new WebSocket(wsUrl(url), { localAddress, headers: { authorization: `Bearer ${token}` } })
  ws.on('error', () => {})
  t.teardown(() => ws.terminate())
  return await new Promise<Outcome>((resolve) => {
    ws.once('open', () => resolve({ open: true, ws }))
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.on('data', (b: Buffer) => { text += b.toString() })
      res.on('end', () => { req.destroy(); resolve({ open: false, status: res.statusCode ?? 0, body: JSON.parse(text) }) })
    })
  })
}

t.test('one token, many loopback addresses: limited per token', async (t) => {
  const { url } = await startServer(t, { tokens: TOKENS, maxConnectionsPerClient: 10, maxConnectionsPerToken: 2 })
  const first = await upgrade(t, url, '127.0.0.2', A_RW)
  const second = await upgrade(t, url, '127.0.0.3', A_RW)
  t.ok(first.open && second.open, 'two connections of the token, from two addresses')
  const third = await upgrade(t, url, '127.0.0.4', A_RW)
  t.equal(third.open, false, 'a third, from a third address, is refused')
  if (!third.open) {
    t.equal(third.status, 429)
    t.equal(third.body.code, 'PXP_ERR_TOO_MANY_CONNECTIONS')
    t.match(third.body.message, /At most 2 WebSocket connections per token/, 'the message says which limit')
  }
  t.ok((await upgrade(t, url, '127.0.0.4', ALL_RW)).open, 'another token is not affected')

  // The token in hello instead of the header: closed with 4429 and the same error.
  const late = new WebSocket(wsUrl(url), { localAddress: '127.0.0.5' })
  late.on('error', () => {})
  t.teardown(() => late.terminate())
  await new Promise((resolve) => late.once('open', resolve))
  const replies: any[] = []
  late.on('message', (data: Buffer) => replies.push(unpack(data)))
  const closed = new Promise<number>((resolve) => late.once('close', (code) => resolve(code)))
  late.send(pack({ op: 'hello', req: 1, protocol: PROTOCOL_VERSION, token: A_RW }))
  t.equal(await closed, 4429, 'hello with a token over its limit closes with 4429')
  t.equal(replies[0]?.code, 'PXP_ERR_TOO_MANY_CONNECTIONS')

  // Closing one gives its place back.
  if (first.open) first.ws.close()
  await until(async () => {
    const again = await upgrade(t, url, '127.0.0.6', A_RW)
    if (again.open) again.ws.close()
    return again.open
  }, { what: 'the closed connection\'s place to come back' })
  t.pass('a closed connection frees its place')
})

t.test('the per-address limit names itself', async (t) => {
  const { url } = await startServer(t, { tokens: TOKENS, maxConnectionsPerClient: 1 })
  t.ok((await upgrade(t, url, '127.0.0.7', A_RW)).open)
  const refused = await upgrade(t, url, '127.0.0.7', A_RW)
  t.equal(refused.open, false)
  if (!refused.open) t.match(refused.body.message, /per client address/)
})

t.test('maxConnectionsPerToken is validated', async (t) => {
  await t.rejects(startServer(t, { maxConnectionsPerToken: 0 }), { code: 'PXP_ERR_VALIDATION', message: /maxConnectionsPerToken/ })
})
