/**
 * An upload the server refuses before its body ends (507 on a full store, 413 on an image over the limit)
 * is reported with the server's code, not as "cannot reach the server": the server answers early and closes
 * while the CLI still sends, and the reset may discard the answer (undici then reports `write EPIPE` or
 * ECONNRESET). cli/remote.ts asks again with a body that never ends (probeRefusal), which a server refusing on
 * the headers answers at once.
 */
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { runCli } from '../helpers/cli.js'
import { startServer } from '../helpers/server.js'

/**
 * A server that reads each request's headers, then resets the connection (`reset` of them: the answer the
 * reset discarded) or answers 507 PXP_ERR_CAPACITY and closes, without reading the body.
 */
async function refusingServer (t: Test, reset: (connection: number) => boolean): Promise<{ url: string, connections: () => number }> {
  let connections = 0
  const body = JSON.stringify({ code: 'PXP_ERR_CAPACITY', message: 'Out of image memory' })
  const server = net.createServer((socket) => {
    const n = connections++
    let head = ''
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      if (reset(n)) {
        socket.resetAndDestroy()
        return
      }
      socket.end(`HTTP/1.1 507 Insufficient Storage\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
    })
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections }
}

t.test('a refusal lost to the reset is asked for again and reported with its code', async (t) => {
  const dir = t.testdir({ 'frame.raw': Buffer.alloc(1 << 20) })
  const server = await refusingServer(t, (n) => n === 0)
  const r = await runCli(server.url, ['put', path.join(dir, 'frame.raw'), '--shape', '1024,1024', '--typestr', '|u1'])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /PXP_ERR_CAPACITY: Out of image memory[\s\S]*hint: the server's memory \(its --capacity\) is full/)
  t.equal(server.connections(), 2, 'the upload, then the probe')
})

t.test('no answer to the probe either: the server could not be reached during the upload (exit 3)', async (t) => {
  const dir = t.testdir({ 'frame.raw': Buffer.alloc(1 << 20) })
  const server = await refusingServer(t, () => true)
  const r = await runCli(server.url, ['put', path.join(dir, 'frame.raw'), '--shape', '1024,1024', '--typestr', '|u1'])
  t.equal(r.code, 3, r.stderr)
  t.match(r.stderr, /cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(\w+ during the upload\)/)
})

t.test('a real server refusing a large file on its headers: its code, every time', async (t) => {
  const { url } = await startServer(t, { capacity: 4 << 20, blockSize: 1 << 20 })
  const file = path.join(t.testdir({}), 'big.raw')
  // Large enough that the CLI is still sending when the refusal and the close arrive.
  await writeFile(file, Buffer.alloc(32 << 20))
  for (let i = 0; i < 3; i++) {
    const r = await runCli(url, ['put', file, '--shape', `${32 << 10},1024`, '--typestr', '|u1'])
    t.equal(r.code, 1, r.stderr)
    t.match(r.stderr, /PXP_ERR_TOO_LARGE/)
  }
})
