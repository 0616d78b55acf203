/**
 * client/remote/transport.ts `BodySink`: how an HTTP body ends in one buffer. Over a raw server that
 * sends its body in many small writes (chunked or with a Content-Length), through both transports
 * (undici, fetch), and the sink's own checks against Content-Length.
 */
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import { HttpClient } from '../../client/remote/http.js'
import { BodySink } from '../../client/remote/transport.js'

/** A server that answers every request with `body` in `pieces` writes, a few ms apart. */
async function trickleServer (t: Test, body: Buffer, pieces: number, chunked: boolean): Promise<string> {
  const server = net.createServer((socket) => {
    socket.once('data', async () => {
      socket.write(`HTTP/1.1 200 OK\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.byteLength}`}\r\nConnection: close\r\n\r\n`)
      const step = Math.ceil(body.byteLength / pieces)
      for (let at = 0; at < body.byteLength; at += step) {
        const piece = body.subarray(at, at + step)
        socket.write(chunked ? Buffer.concat([Buffer.from(`${piece.byteLength.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece)
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
      if (chunked) socket.end('0\r\n\r\n')
      else socket.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

const body = Buffer.from(Array.from({ length: 300_001 }, (_, i) => (i * 7 + (i >> 11)) & 255))

for (const transport of ['undici', 'fetch'] as const) {
  for (const chunked of [false, true]) {
    t.test(`${transport}, ${chunked ? 'chunked' : 'Content-Length'}: a body in 40 pieces arrives whole, in one buffer of its own`, async (t) => {
      const url = await trickleServer(t, body, 40, chunked)
      const client = new HttpClient(url, transport === 'fetch' ? { fetch: globalThis.fetch } : {})
      t.teardown(() => client.destroy())
      const res = await client.read('/anything')
      t.equal(res.bytes.byteLength, body.byteLength)
      t.ok(Buffer.from(res.bytes).equals(body), 'every byte in order')
      t.equal(res.bytes.byteOffset, 0, 'its own buffer, not a view into a pooled one')
      t.equal(res.bytes.buffer.byteLength, body.byteLength, 'exactly its size')
    })
  }
}

t.test('into a buffer of the caller: the chunks are copied to their place as they come', async (t) => {
  const url = await trickleServer(t, body, 40, false)
  const client = new HttpClient(url)
  t.teardown(() => client.destroy())
  const into = new Uint8Array(body.byteLength + 10).fill(0xee)
  const res = await client.read('/anything', { into })
  t.equal(res.bytes.buffer, into.buffer, 'received in place')
  t.ok(Buffer.from(res.bytes).equals(body))
  t.equal(into[body.byteLength], 0xee, 'nothing written past the body')
})

t.test('the sink holds the body to its Content-Length', async (t) => {
  const more = new BodySink(10, 'http://x/')
  more.add(new Uint8Array(6))
  t.throws(() => more.add(new Uint8Array(5)), { code: 'PXP_ERR_BYTE_COUNT' }, 'a chunk past the length fails at once, joined or in place')
  const intoMore = new BodySink(10, 'http://x/', new Uint8Array(10))
  intoMore.add(new Uint8Array(6))
  t.throws(() => intoMore.add(new Uint8Array(5)), { code: 'PXP_ERR_BYTE_COUNT' })
  const fewer = new BodySink(10, 'http://x/')
  fewer.add(new Uint8Array(9))
  t.throws(() => fewer.finish(), { code: 'PXP_ERR_BYTE_COUNT' }, 'a short body fails at the end')
  const small = new Uint8Array(4)
  const tooSmall = new BodySink(10, 'http://x/', small)
  tooSmall.add(new Uint8Array(10).fill(3))
  const out = tooSmall.finish()
  t.not(out.buffer, small.buffer, 'a buffer of the caller that is too small is left alone')
  t.same([...out], Array(10).fill(3))
  const unknown = new BodySink(null, 'http://x/')
  unknown.add(Uint8Array.of(1, 2))
  unknown.add(Uint8Array.of(3))
  t.same([...unknown.finish()], [1, 2, 3], 'without a length the chunks are joined as they are')
})
