/**
 * Issue 12, item 2 (Origin): any web page a user opens could open a WebSocket to the server on
 * 127.0.0.1 (browsers send the page's `Origin`, and WebSockets are not subject to CORS) and create, read and
 * delete images without a token. Now an upgrade, and a POST/PUT/DELETE, is served only without an Origin
 * (non-browser clients), from the same origin, or from an origin allowed with `corsOrigins`.
 * Real `ws` clients with real Origin headers.
 */
import net from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { startServer } from '../helpers/server.js'

interface Outcome {
  opened: boolean
  status?: number
  body?: { code?: string, message?: string }
}

/** Open a WebSocket to `url` + /ws with `origin`; resolves with whether it opened or how it was refused. */
async function connect (url: string, origin: string | undefined): Promise<Outcome> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', origin === undefined ? {} : { origin })
  return await new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close()
      resolve({ opened: true })
    })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => {
        let body: Outcome['body']
        try { body = JSON.parse(text) as Outcome['body'] } catch {}
        ws.terminate()
        resolve({ opened: false, status: res.statusCode, body })
      })
    })
    ws.once('error', (err) => { if (ws.readyState !== ws.CLOSED) reject(err) })
  })
}

t.test('a WebSocket from another site\'s page is refused at the upgrade', async (t) => {
  const { url, server } = await startServer(t)
  for (const origin of ['http://evil.example', 'https://evil.example:8443', 'null', 'http://127.0.0.1.evil.example', 'file://', `http://localhost:${Number(new URL(url).port) + 1}`]) {
    const outcome = await connect(url, origin)
    t.equal(outcome.opened, false, `Origin ${origin}: not opened`)
    t.equal(outcome.status, 403, `Origin ${origin}: 403`)
    t.equal(outcome.body?.code, 'PXP_ERR_BAD_ORIGIN', `Origin ${origin}: PXP_ERR_BAD_ORIGIN`)
  }
  // Version-8 clients named their page in Sec-WebSocket-Origin.
  const v8 = await new Promise<string>((resolve, reject) => {
    let answer = ''
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.write(
      `GET /ws HTTP/1.1\r\nHost: ${new URL(url).host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Origin: http://evil.example\r\n\r\n'))
    // An upgrade that was (wrongly) accepted stays open: give up after 5 s with what arrived.
    const timer = setTimeout(() => { socket.destroy(); resolve(answer) }, 5000)
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.on('error', reject)
  })
  t.match(v8, /^HTTP\/1\.1 403 [^]*PXP_ERR_BAD_ORIGIN/, 'Sec-WebSocket-Origin from another site: 403')
  t.equal(server.app.pixelportWebSocket.connections, 0, 'no connection was made')

  t.same(await connect(url, undefined), { opened: true }, 'no Origin (a non-browser client): opened')
  t.same(await connect(url, url), { opened: true }, 'the same origin (e.g. the viewer): opened')
  const localhost = url.replace('127.0.0.1', 'localhost')
  const viaLocalhost = new WebSocket(localhost.replace(/^http/, 'ws') + '/ws', { origin: localhost })
  await new Promise<void>((resolve, reject) => { viaLocalhost.once('open', () => resolve()); viaLocalhost.once('error', reject) })
  viaLocalhost.close()
  t.pass('same origin by another loopback name: opened')
})

t.test('origins allowed with corsOrigins may connect; others may not', async (t) => {
  const { url } = await startServer(t, { corsOrigins: ['https://app.example'] })
  t.same(await connect(url, 'https://app.example'), { opened: true }, 'the allowed origin: opened')
  const other = await connect(url, 'https://other.example')
  t.equal(other.status, 403)
  t.equal(other.body?.code, 'PXP_ERR_BAD_ORIGIN')
  const any = await startServer(t, { corsOrigins: ['*'] })
  t.same(await connect(any.url, 'https://anyone.example'), { opened: true }, 'corsOrigins ["*"] allows any origin')
})

t.test('cross-site POST, PUT and DELETE are refused and change nothing; GET is unaffected', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'kept', width: 2, height: 2, mode: 'L' })
  const evil = { origin: 'http://evil.example' }
  const attempts: Array<[string, string, RequestInit]> = [
    ['POST', '/images?id=made&width=2&height=2&mode=L', { body: new Uint8Array(4), headers: { ...evil, 'content-type': 'application/octet-stream' } }],
    ['POST', '/images', { body: JSON.stringify({ id: 'made', width: 2, height: 2, mode: 'L' }), headers: { ...evil, 'content-type': 'text/plain' } }],
    ['PUT', '/images/kept/data', { body: new Uint8Array(4).fill(9), headers: { ...evil, 'content-type': 'application/octet-stream' } }],
    ['DELETE', '/images/kept', { headers: evil }],
  ]
  for (const [method, path, init] of attempts) {
    const res = await fetch(url + path, { ...init, method })
    const body = await res.json() as { code: string }
    t.equal(res.status, 403, `${method} ${path} from another origin: 403`)
    t.equal(body.code, 'PXP_ERR_BAD_ORIGIN')
  }
  t.same(server.store.list().map((d) => [d.id, d.generation]), [['kept', 0]], 'the store is as it was')

  const read = await fetch(url + '/images/kept', { headers: evil })
  t.equal(read.status, 200, 'a cross-site GET is answered (without CORS the page cannot read it)')
  t.equal(read.headers.get('access-control-allow-origin'), null)
  const same = await fetch(url + '/images/kept', { method: 'DELETE', headers: { origin: url } })
  t.equal(same.status, 204, 'a same-origin DELETE is served')
})
