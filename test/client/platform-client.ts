/**
 * Child process for platform-websocket.test.ts: runs RemoteClient where `globalThis.WebSocket` exists
 * (Node.js with --experimental-websocket: the WHATWG WebSocket browsers have), records that the platform
 * class was used, and prints what it got as one JSON line.
 */
import { RemoteClient } from '../../client/remote/index.js'

const url = process.argv[2]
const Platform = (globalThis as unknown as { WebSocket: new (url: string) => object }).WebSocket
let constructed = 0
;(globalThis as unknown as { WebSocket: unknown }).WebSocket = class extends Platform {
  constructor (u: string) {
    super(u)
    constructed++
  }
}

const client = await RemoteClient.connect(url)
const big = new Uint8Array(300 * 200 * 4).map((_, i) => (i * 7) & 0xff)
await client.put({ width: 300, height: 200, mode: 'RGBA', id: 'p' }, big)
const whole = await client.get('p')
const region = await client.get('p', { region: { x: 10, y: 20, width: 3, height: 2 } })
const sub = await client.subscribe({ ids: ['p'], data: true })
await client.put('p', big.map((v) => v ^ 0xff))
const event = (await sub.next()).value!
await sub.return()
let error = ''
try {
  await client.describe('missing')
} catch (err) {
  error = (err as { code: string }).code
}
await client.close()
console.log(JSON.stringify({
  constructed,
  wholeEqual: Buffer.from(whole.bytes).equals(Buffer.from(big)),
  dataType: whole.data.constructor.name,
  region: Array.from(region.bytes.subarray(0, 8)),
  event: { type: event.type, generation: event.generation, first: event.bytes?.[0], length: event.bytes?.length },
  error,
}))
