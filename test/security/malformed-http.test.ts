/**
 * Issue 12, item 8: every error is `{ code, message }`, also for requests Node's HTTP parser refuses before
 * fastify sees them (they used to get fastify's `{ error, statusCode }` or an empty body), for a missing
 * Host (Node's bare 400), and for a plain GET of the WebSocket endpoint (an empty 404). Raw TCP sockets,
 * since no HTTP client sends these.
 */
import net from 'node:net'
import t from 'tap'
import { ERRORS, type ErrorCode } from '../../protocol/errors.js'
import { startServer } from '../helpers/server.js'

interface Answer {
  status: number
  headers: Record<string, string>
  body: { code?: string, message?: string } | null
  raw: string
}

/**
 * Send `bytes`, collect everything until the server closes (or 5 s), and parse the responses. With `then`,
 * those bytes are sent on the same connection once a first response has arrived.
 */
async function exchange (url: string, bytes: string, then?: string): Promise<Answer[]> {
  const raw = await new Promise<string>((resolve, reject) => {
    let answer = ''
    let next = then
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.write(bytes))
    const timer = setTimeout(() => { socket.destroy(); resolve(answer) }, 5000)
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
      if (next !== undefined && answer.includes('\r\n\r\n')) {
        socket.write(next)
        next = undefined
      }
    })
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNRESET') resolve(answer); else reject(err) })
  })
  const answers: Answer[] = []
  let rest = raw
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n')
    const head = rest.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of head.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
    const length = Number(headers['content-length'] ?? 0)
    const text = rest.slice(end + 4, end + 4 + length)
    let body: Answer['body'] = null
    try { body = JSON.parse(text) as Answer['body'] } catch {}
    answers.push({ status: Number(head[0].split(' ')[1]), headers, body, raw: rest.slice(0, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
  return answers
}

const GOOD = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

const CASES: Array<{ name: string, bytes: string, status: number, code: ErrorCode }> = [
  { name: 'Content-Length not a number', bytes: 'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'two Content-Lengths', bytes: 'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'Content-Length and Transfer-Encoding', bytes: 'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'NUL in a header value', bytes: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\0b\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'a header line without a colon', bytes: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'garbage request line', bytes: 'GARBAGE\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'a bad chunk size', bytes: 'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'headers over the size limit', bytes: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-Filler: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n'.repeat(1000) + '\r\n', status: 431, code: 'PXP_ERR_HEADERS_TOO_LARGE' },
  { name: 'no Host (HTTP/1.1)', bytes: 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'empty Host', bytes: 'GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_REQUEST' },
  { name: 'GET /ws without an upgrade', bytes: 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', status: 426, code: 'PXP_ERR_UPGRADE_REQUIRED' },
  { name: 'CONNECT (authority form)', bytes: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_TARGET' },
  { name: 'OPTIONS * (asterisk form)', bytes: 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', status: 400, code: 'PXP_ERR_BAD_TARGET' },
]

t.test('malformed HTTP gets a registry error as JSON, and the connection is closed', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'kept', width: 2, height: 2, mode: 'L' })
  for (const c of CASES) {
    const answers = await exchange(url, c.bytes)
    t.equal(answers.length, 1, `${c.name}: one response`)
    const [a] = answers
    if (a === undefined) continue
    t.equal(a.status, c.status, `${c.name}: status ${c.status}`)
    t.equal(a.body?.code, c.code, `${c.name}: ${c.code}`)
    t.equal(ERRORS[c.code].status, a.status, `${c.name}: the status is the registry's for the code`)
    t.type(a.body?.message, 'string', `${c.name}: a message`)
    t.match(a.headers['content-type'], /^application\/json/, `${c.name}: JSON`)
    if (c.code !== 'PXP_ERR_UPGRADE_REQUIRED') t.equal(a.headers.connection?.toLowerCase(), 'close', `${c.name}: Connection: close`)
  }
  const ws = (await exchange(url, CASES.find((c) => c.code === 'PXP_ERR_UPGRADE_REQUIRED')!.bytes))[0]
  t.equal(ws.headers.upgrade, 'websocket', '426 names the protocol to upgrade to')

  // A bad request after a good one on the same (kept-alive) connection is still answered.
  const pipelined = await exchange(url, GOOD, CASES[1].bytes)
  t.same(pipelined.map((a) => a.status), [200, 400], 'good request answered, then the bad one')
  t.equal(pipelined[1]?.body?.code, 'PXP_ERR_BAD_REQUEST')

  // HTTP/1.0 without Host: refused the same way.
  const old = await exchange(url, 'GET /healthz HTTP/1.0\r\n\r\n')
  t.equal(old[0]?.status, 400)
  t.equal(old[0]?.body?.code, 'PXP_ERR_BAD_REQUEST')

  // Nothing changed, and the server still serves.
  t.same(server.store.list().map((d) => d.id), ['kept'])
  const health = await exchange(url, GOOD.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
  t.equal(health[0]?.status, 200)
})
