/**
 * Outbound on its own, over a real `ws` pair: chunks on the zero-copy path and, when a WebSocket extension
 * was negotiated (so writing frames by hand would be wrong), through `ws` as a two-fragment message.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Unpackr } from 'msgpackr'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { WIRE_OPTIONS } from '../../protocol/messages.js'
import { Outbound } from '../../server/ws/outbound.js'

const unpackr = new Unpackr({ ...WIRE_OPTIONS })

for (const deflate of [false, true]) {
  t.test(`chunks and control messages arrive as ordinary messages (${deflate ? 'permessage-deflate: ws fragments' : 'direct frames'})`, async (t) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate })
    await once(wss, 'listening')
    t.teardown(() => new Promise<void>((resolve) => wss.close(() => resolve())))
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: deflate })
    const [serverSide] = await accepted
    await once(client, 'open')
    const out = new Outbound(serverSide, 64 * 1024, 256 * 1024)
    t.equal(out.direct, !deflate)
    const received: unknown[] = []
    const done = new Promise<void>((resolve) => client.on('message', (d: Buffer) => {
      received.push(unpackr.unpack(d))
      if (received.length === 4) resolve()
    }))
    const payload = Buffer.alloc(100_000, 7)
    const flushed = new Promise<Error | null | undefined>((resolve) => out.sendChunk(5, 0, payload.subarray(0, 70_000), resolve))
    out.send({ op: 'deleted', req: 1, id: 'x' })
    out.sendChunk(5, 70_000, payload.subarray(70_000))
    out.sendChunk(6, 0, Buffer.from([1, 2, 3]))
    t.equal(await flushed, null, 'write callback without error')
    await done
    const summary = (received as Array<Record<string, unknown>>).map((m) => m.op === 'chunk'
      ? ['chunk', m.stream, m.offset, (m.data as Buffer).length, (m.data as Buffer).every((v) => v === (m.stream === 5 ? 7 : v))]
      : [m.op, m.req, m.id])
    t.same(summary, [
      ['chunk', 5, 0, 70_000, true],
      ['deleted', 1, 'x'],
      ['chunk', 5, 70_000, 30_000, true],
      ['chunk', 6, 0, 3, true],
    ], 'in order, intact')
    t.equal(await out.writable(), true)
    client.close()
    await once(serverSide, 'close')
    t.equal(out.open, false)
    t.equal(await out.writable(), false, 'writable() answers false once closed')
    const late = await new Promise<Error | null | undefined>((resolve) => out.sendChunk(7, 0, Buffer.alloc(1), resolve))
    t.type(late, Error, 'a chunk after close fails its callback')
    let ran = false
    out.onClose(() => { ran = true })
    t.equal(ran, true, 'onClose after close runs at once')
  })
}
