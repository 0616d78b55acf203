/**
 * Issue 12, item 2 (Host): with DNS rebinding, a page on evil.example re-points its own name at 127.0.0.1
 * and is then same-origin with the server for the browser: no Origin check can tell. The request still
 * says `Host: evil.example`. A server on a loopback address now answers only to loopback names and to
 * names given with `allowedHosts` / `--allowed-host`; anything else is 421 PXP_ERR_BAD_HOST.
 * Raw HTTP requests, since browsers (and fetch) do not let a page choose Host.
 */
import net from 'node:net'
import t from 'tap'
import { resolveOptions } from '../../server/options.js'
import { serveCli } from '../helpers/cli.js'
import { startServer } from '../helpers/server.js'

/** One request with this Host header (null: none) on a fresh connection; status and parsed body. */
async function withHost (url: string, host: string | null, request = 'GET /images'): Promise<{ status: number, code?: string }> {
  const headers = request.startsWith('GET /ws')
    ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
    : 'Connection: close\r\n'
  const bytes = `${request} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}${headers}\r\n`
  const raw = await new Promise<string>((resolve, reject) => {
    let answer = ''
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.write(bytes))
    const timer = setTimeout(() => { socket.destroy(); resolve(answer) }, 5000)
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
      // An accepted upgrade stays open: its 101 is all we need.
      if (answer.startsWith('HTTP/1.1 101')) socket.destroy()
    })
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.on('error', reject)
  })
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1])
  let code: string | undefined
  try { code = (JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { code?: string }).code } catch {}
  return { status, code }
}

t.test('a loopback server refuses every Host that is not a loopback name, on every route', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'secret', width: 2, height: 2, mode: 'L' })
  const port = new URL(url).port
  for (const host of ['evil.example', `evil.example:${port}`, `EVIL.example:${port}`, `127.0.0.1.nip.io:${port}`, `localhost.evil.example:${port}`, `0.0.0.0:${port}`, `[::2]:${port}`, 'a b', 'evil.example:99999']) {
    for (const request of ['GET /images', 'GET /images/secret/data', 'DELETE /images/secret', 'GET /healthz', 'GET /ws']) {
      const res = await withHost(url, host, request)
      t.equal(res.status, 421, `${request} with Host ${host}: 421`)
      t.equal(res.code, 'PXP_ERR_BAD_HOST', `${request} with Host ${host}: PXP_ERR_BAD_HOST`)
    }
  }
  t.same(server.store.list().map((d) => d.id), ['secret'], 'nothing was deleted')
  t.equal(server.app.pixelportWebSocket.connections, 0, 'no WebSocket was opened')

  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost', '127.0.0.1', '[::1]', `LOCALHOST:${port}`]) {
    t.equal((await withHost(url, host)).status, 200, `Host ${host}: served`)
  }
  t.equal((await withHost(url, `localhost:${port}`, 'GET /ws')).status, 101, 'a WebSocket with a loopback Host: upgraded')
  const missing = await withHost(url, null)
  t.equal(missing.status, 400, 'no Host: 400')
  t.equal(missing.code, 'PXP_ERR_BAD_REQUEST')
})

t.test('allowedHosts adds names (any port) and name:port pairs', async (t) => {
  const { url } = await startServer(t, { allowedHosts: ['pixelport.test', 'Other.Test:1234'] })
  const port = new URL(url).port
  for (const host of ['pixelport.test', `pixelport.test:${port}`, 'PIXELPORT.test:80', 'other.test:1234', `localhost:${port}`]) {
    t.equal((await withHost(url, host)).status, 200, `Host ${host}: served`)
  }
  for (const host of ['other.test', `other.test:${port}`, 'evil.example', 'sub.pixelport.test']) {
    t.equal((await withHost(url, host)).code, 'PXP_ERR_BAD_HOST', `Host ${host}: refused`)
  }
})

t.test('allowedHosts is validated up front, naming the option', async (t) => {
  for (const bad of [['http://x.example'], ['x.example/path'], [''], 'x.example', [3], ['a b'], ['x.example:70000']]) {
    t.throws(() => resolveOptions({ allowedHosts: bad as string[] }), { code: 'PXP_ERR_VALIDATION', message: /allowedHosts/ }, JSON.stringify(bad))
  }
  t.same(resolveOptions({ allowedHosts: ['Pixelport.Internal', 'x.example:8080', '[fd00::1]:80', '10.0.0.5'] }).allowedHosts, ['pixelport.internal', 'x.example:8080', '[fd00::1]:80', '10.0.0.5'])
  t.same(resolveOptions({}).allowedHosts, [])
})

t.test('pixelport serve --allowed-host and PIXELPORT_ALLOWED_HOSTS', async (t) => {
  const { url } = await serveCli(t, ['--allowed-host', 'cam.test', '--allowed-host', 'cam2.test:81'])
  t.equal((await withHost(url, 'cam.test')).status, 200)
  t.equal((await withHost(url, 'cam2.test:81')).status, 200)
  t.equal((await withHost(url, 'evil.example')).code, 'PXP_ERR_BAD_HOST')
  process.env.PIXELPORT_ALLOWED_HOSTS = 'env.test, env2.test'
  const fromEnv = await serveCli(t, []).finally(() => { delete process.env.PIXELPORT_ALLOWED_HOSTS })
  t.equal((await withHost(fromEnv.url, 'env2.test')).status, 200)
  t.equal((await withHost(fromEnv.url, 'cam.test')).code, 'PXP_ERR_BAD_HOST')
})
