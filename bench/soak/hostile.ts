/**
 * The soak's hostile clients: while the honest clients work, each of these loops over attacks that must be
 * refused with the documented answer and cost the server nothing once they end.
 *
 * - a stalled upload (PUT, raw POST or picture POST that stops mid-body): aborted by the idle timeout;
 * - a cross-site WebSocket upgrade (`Origin: http://evil.example`): 403 PXP_ERR_BAD_ORIGIN;
 * - an absolute-form request target (`GET http://127.0.0.1:9/images HTTP/1.1`): 400 PXP_ERR_BAD_TARGET;
 * - a DNS-rebinding Host (`Host: evil.example`): 421 PXP_ERR_BAD_HOST;
 * - oversized and malformed requests (a body over the limit, headers over 16 KiB, a bad Content-Length, a
 *   NUL in a header): a 4xx `{ code, message }`.
 *
 * Any other answer is a violation. The attacks speak raw HTTP over `net` sockets, as an attacker would.
 */
import net from 'node:net'
import { imagePath } from '../../protocol/urls.js'

/** How the soak records what happened. */
export interface HostileSink {
  violation (what: string): void
  count (attack: string, outcome: string): void
  running (): boolean
}

interface RawAnswer { status: number, code: string | undefined, closed: boolean }

/** Send `request` (a raw HTTP/1.1 request) on a fresh connection; resolve with the status and the body's code. */
async function raw (port: number, request: string | Buffer, options: { timeoutMs?: number } = {}): Promise<RawAnswer> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => { socket.destroy(); resolve(parse(data, false)) }, options.timeoutMs ?? 10_000)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(parse(data, true)) })
    socket.write(request)
  })
}

function parse (data: string, closed: boolean): RawAnswer {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)
  const body = data.slice(data.indexOf('\r\n\r\n') + 4)
  let code: string | undefined
  try { code = JSON.parse(body).code } catch { code = /"code":"(PXP_ERR_[A-Z_]+)"/.exec(body)?.[1] }
  return { status, code, closed }
}

/**
 * A stalled upload: headers promising `length` bytes, half of them, then silence until the server ends it.
 * Resolves with what the server answered (or that it closed the connection) and how long it took.
 */
async function stalledUpload (port: number, head: string, length: number, timeoutMs: number): Promise<RawAnswer & { ms: number }> {
  const started = performance.now()
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => { socket.destroy(); resolve({ ...parse(data, false), ms: performance.now() - started }) }, timeoutMs)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ ...parse(data, true), ms: performance.now() - started }) })
    socket.write(`${head}Content-Length: ${length}\r\n\r\n`)
    socket.write(Buffer.alloc(length >> 1, 7))
  })
}

/**
 * One hostile client: attacks one after another until the soak ends. `idleTimeoutMs` is the server's
 * upload idle timeout (a stalled upload must be ended within it plus a margin).
 */
export async function hostileClient (k: number, port: number, idleTimeoutMs: number, sink: HostileSink): Promise<void> {
  const host = `127.0.0.1:${port}`
  const expect = (attack: string, answer: RawAnswer, statuses: number[], codes: string[]): void => {
    const ok = statuses.includes(answer.status) && answer.code !== undefined && codes.includes(answer.code)
    sink.count(attack, ok ? `${answer.status} ${answer.code}` : `unexpected ${answer.status} ${answer.code ?? '(no code)'}`)
    if (!ok) sink.violation(`hostile ${attack}: answered ${answer.status} ${answer.code ?? '(no code)'}, expected ${statuses.join('/')} ${codes.join('/')}`)
  }
  let round = 0
  while (sink.running()) {
    const id = `hostile${k}/${round}`
    switch (round++ % 7) {
      case 0: {
        // The image exists (so a PUT reaches the staging path); its upload then stalls.
        await raw(port, `POST /images HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${JSON.stringify({ id, width: 256, height: 256, mode: 'L' }).length}\r\nConnection: close\r\n\r\n${JSON.stringify({ id, width: 256, height: 256, mode: 'L' })}`)
        const answer = await stalledUpload(port, `PUT ${imagePath(id, '/data')} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\n`, 256 * 256, idleTimeoutMs * 4 + 10_000)
        expect('stalled PUT', answer, [408], ['PXP_ERR_UPLOAD_TIMEOUT'])
        await raw(port, `DELETE ${imagePath(id)} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        break
      }
      case 1: {
        const answer = await stalledUpload(port, `POST /images?width=256&height=256&mode=L&id=${encodeURIComponent(id)} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\n`, 256 * 256, idleTimeoutMs * 4 + 10_000)
        expect('stalled raw POST', answer, [408], ['PXP_ERR_UPLOAD_TIMEOUT'])
        break
      }
      case 2: {
        const answer = await stalledUpload(port, `POST /images?id=${encodeURIComponent(id)} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: image/png\r\n`, 64 * 1024, idleTimeoutMs * 4 + 10_000)
        expect('stalled picture', answer, [408], ['PXP_ERR_UPLOAD_TIMEOUT'])
        break
      }
      case 3: {
        const key = Buffer.from(`hostile-${k}-${round}-key!`).toString('base64')
        const answer = await raw(port, `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n`)
        expect('cross-site upgrade', answer, [403], ['PXP_ERR_BAD_ORIGIN'])
        break
      }
      case 4: {
        const answer = await raw(port, `GET http://127.0.0.1:9/images HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        expect('absolute-form target', answer, [400], ['PXP_ERR_BAD_TARGET'])
        const rebound = await raw(port, 'GET /images HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n')
        expect('rebinding Host', rebound, [421], ['PXP_ERR_BAD_HOST'])
        break
      }
      case 5: {
        const big = await raw(port, `POST /images HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${64 * 1024 * 1024}\r\nConnection: close\r\n\r\n{`)
        expect('oversized JSON body', big, [413], ['PXP_ERR_BODY_TOO_LARGE'])
        const headers = await raw(port, `GET /images HTTP/1.1\r\nHost: ${host}\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`)
        expect('oversized headers', headers, [431], ['PXP_ERR_HEADERS_TOO_LARGE'])
        break
      }
      default: {
        const badLength = await raw(port, `PUT /images/x/data HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 12abc\r\n\r\n`)
        expect('bad Content-Length', badLength, [400], ['PXP_ERR_BAD_REQUEST'])
        const nul = await raw(port, Buffer.from(`GET /images HTTP/1.1\r\nHost: ${host}\r\nX-Evil: a\u0000b\r\n\r\n`, 'latin1'))
        expect('NUL in a header', nul, [400], ['PXP_ERR_BAD_REQUEST'])
      }
    }
  }
}
