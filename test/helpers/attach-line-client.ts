/**
 * The attach socket spoken by hand over a real Unix socket, the way a client without atomics (Python)
 * speaks it: one JSON object per line each way; the server takes leases, locks and loans on its behalf.
 */
import net from 'node:net'
import { HEADER, LAYOUT_VERSION } from '../../protocol/layout.js'
import type { PixelportServer } from '../../server/server.js'

export interface Reply { result?: any, error?: { code: string, message: string } }

export interface LineClient {
  ask: (op: string, fields?: object) => Promise<Reply>
  events: any[]
  socket: net.Socket
  closed: Promise<void>
}

/** Connect to the attach socket at `socketPath` (no hello yet). */
export async function connectLines (socketPath: string): Promise<LineClient> {
  const socket = net.connect(socketPath)
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const waiting = new Map<number, (r: Reply) => void>()
  const events: any[] = []
  let buffer = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffer.slice(0, nl))
      buffer = buffer.slice(nl + 1)
      if (msg.op === 'event') events.push(msg)
      else waiting.get(msg.req)?.(msg)
    }
  })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let req = 0
  return {
    events,
    socket,
    closed,
    ask: async (op, fields = {}) => await new Promise<Reply>((resolve) => {
      const id = ++req
      waiting.set(id, resolve)
      socket.write(JSON.stringify({ ...fields, op, req: id }) + '\n')
    }),
  }
}

/** Connect to `server`'s attach socket and say hello with the table's key, claims kept by the server. */
export async function helloLines (server: PixelportServer): Promise<LineClient> {
  const c = await connectLines(server.attach!.address)
  const words = server.store.table.words
  const r = await c.ask('hello', { protocol: 1, layoutVersion: LAYOUT_VERSION, pid: process.pid, key: [words[HEADER.ATTACH_KEY] >>> 0, words[HEADER.ATTACH_KEY + 1] >>> 0], claims: false })
  if (r.error !== undefined) throw new Error(r.error.message)
  return c
}
