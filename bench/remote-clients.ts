/**
 * The plain clients bench/remote.ts measures ours against: node:http, a raw `net` socket, a plain `ws`
 * message, and a raw `ws` + msgpackr client of our protocol. Each is a Fetcher: get image `id` of `size`
 * bytes, resolve with the byte count received.
 */
import http from 'node:http'
import net from 'node:net'
import { Packr, Unpackr } from 'msgpackr'
import { WebSocket } from 'ws'
import { PROTOCOL_VERSION, WIRE_OPTIONS } from '../protocol/messages.js'

export type Fetcher = (id: string, size: number) => Promise<number>

/**
 * GET into one buffer of content-length bytes, fresh or the one given (the same collector for both HTTP
 * servers).
 */
export function httpGet (agent: http.Agent, port: number, path: string, into?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const out = into ?? Buffer.allocUnsafe(Number(res.headers['content-length']))
      let at = 0
      res.on('data', (d: Buffer) => { out.set(d, at); at += d.length })
      res.on('end', () => resolve(at))
      res.on('error', reject)
    }).on('error', reject)
  })
}

export async function netClient (port: number, into?: Buffer): Promise<Fetcher> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.setNoDelay(true)
  return async (id, size) => await new Promise<number>((resolve) => {
    const out = into ?? Buffer.allocUnsafe(size)
    let at = 0
    const onData = (d: Buffer): void => {
      out.set(d, at)
      at += d.length
      if (at >= size) {
        socket.off('data', onData)
        resolve(at)
      }
    }
    socket.on('data', onData)
    socket.write(id)
  })
}

export async function wsClient (port: number, decode: (d: Buffer) => number): Promise<Fetcher> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
  await new Promise((resolve) => ws.once('open', resolve))
  return async (id) => await new Promise<number>((resolve) => {
    ws.once('message', (d: Buffer) => resolve(decode(d)))
    ws.send(id)
  })
}

/**
 * A raw client of our WebSocket protocol: `ws` and msgpackr, nothing of ours but the message shapes. Each
 * `chunk` is copied into one buffer of the frame's byteLength, as any careful client would.
 */
export async function rawProtocolClient (url: string): Promise<Fetcher> {
  const packr = new Packr({ ...WIRE_OPTIONS })
  const unpackr = new Unpackr({ ...WIRE_OPTIONS })
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 })
  await new Promise((resolve) => ws.once('open', resolve))
  let onMessage: (m: { op: string, byteLength?: number, offset?: number, data?: Uint8Array }) => void = () => {}
  ws.on('message', (d: Buffer) => onMessage(unpackr.unpack(d)))
  let req = 1
  await new Promise<void>((resolve) => {
    onMessage = (m) => { if (m.op === 'welcome') resolve() }
    ws.send(packr.pack({ op: 'hello', req: req++, protocol: PROTOCOL_VERSION, client: 'raw-ws-msgpackr' }))
  })
  return async (id) => await new Promise<number>((resolve, reject) => {
    let out: Uint8Array | null = null
    let received = 0
    onMessage = (m) => {
      if (m.op === 'frame') out = new Uint8Array(m.byteLength!)
      else if (m.op === 'chunk') { out!.set(m.data!, m.offset!); received += m.data!.byteLength } else if (m.op === 'end') resolve(received)
      else reject(new Error(`raw ws client: ${JSON.stringify(m)}`))
    }
    ws.send(packr.pack({ op: 'get', req: req++, id }))
  })
}
