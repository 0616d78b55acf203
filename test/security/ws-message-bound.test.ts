/**
 * docs/protocol.md §10 promises the largest message the server sends: `limits.chunkSize + 48` bytes (a
 * full chunk and its fixed header). A client that sets its maximum message size to exactly that bound
 * (as a Python websockets client must: its default 1 MiB is 48 bytes short) receives a chunked get
 * whole, and the bound is tight: the full chunks are exactly that long.
 */
import { Unpackr } from 'msgpackr'
import t from 'tap'
import { WebSocket } from 'ws'
import { CHUNK_HEAD_BYTES, WIRE_OPTIONS } from '../../protocol/messages.js'
import { startServer } from '../helpers/server.js'
import { pack, wsUrl } from '../helpers/wire-client.js'

const MiB = 1024 * 1024
const unpackr = new Unpackr({ ...WIRE_OPTIONS })

async function getWithMaxPayload (url: string, maxPayload: number, id: string): Promise<{ sizes: number[], bytes: number, closed: number | null }> {
  const ws = new WebSocket(wsUrl(url), { perMessageDeflate: false, maxPayload })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const sizes: number[] = []
  let bytes = 0
  const result = await new Promise<{ closed: number | null }>((resolve) => {
    ws.on('message', (data: Buffer) => {
      sizes.push(data.byteLength)
      const m = unpackr.unpack(data) as { op: string, data?: Uint8Array }
      if (m.op === 'chunk') bytes += m.data!.byteLength
      if (m.op === 'end' || m.op === 'error') resolve({ closed: null })
    })
    ws.once('close', (code) => resolve({ closed: code }))
    ws.send(pack({ op: 'get', req: 1, id }))
  })
  ws.terminate()
  return { sizes, bytes, ...result }
}

t.test('every message of a chunked get fits in chunkSize + 48 bytes, and the full chunks are exactly that', async (t) => {
  const { server, url } = await startServer(t)
  const chunkSize = server.app.pixelportWebSocket.limits.chunkSize
  t.equal(chunkSize, MiB, 'default chunkSize')
  const bound = chunkSize + CHUNK_HEAD_BYTES
  server.store.create({ id: 'big', width: 1024, height: 3 * 1024 + 7, mode: 'L' })
  const ok = await getWithMaxPayload(url, bound, 'big')
  t.equal(ok.closed, null, 'a client with maxPayload = chunkSize + 48 is not closed')
  t.equal(ok.bytes, 1024 * (3 * 1024 + 7), 'and receives every byte')
  t.equal(Math.max(...ok.sizes), bound, 'the largest message is exactly chunkSize + 48')

  // 48 bytes short (what a default Python websockets client allows): the first full chunk is too big.
  const short = await getWithMaxPayload(url, MiB, 'big')
  // (`ws` reports the close it initiated with 1009 to the peer as 1006 locally.)
  t.not(short.closed, null, 'a 1 MiB limit fails: the connection is closed')
  t.equal(short.bytes, 0, '... on the first chunk')
})

t.test('with another chunkSize the bound follows it', async (t) => {
  const chunkSize = 64 * 1024
  const { server, url } = await startServer(t, { chunkSize })
  server.store.create({ id: 'img', width: 1000, height: 300, mode: 'RGB' })
  const got = await getWithMaxPayload(url, chunkSize + CHUNK_HEAD_BYTES, 'img')
  t.equal(got.closed, null)
  t.equal(got.bytes, 1000 * 300 * 3)
  t.equal(Math.max(...got.sizes), chunkSize + CHUNK_HEAD_BYTES)
})
