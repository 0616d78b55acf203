/**
 * The endpoint reports what only it sees to `GET /metrics`: connections, subscriptions, bytes streamed
 * and received over WebSocket.
 */
import { once } from 'node:events'
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { nextServerSocket, WireClient } from '../helpers/wire-client.js'

async function scrape (url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url + '/metrics')).text()
  const figures = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(pixelport_(?:connections|subscriptions|bytes_streamed_total|bytes_received_total)(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (m !== null) figures.set(m[1], Number(m[2]))
  }
  return figures
}

t.test('connections, subscriptions and bytes over WebSocket show in /metrics', async (t) => {
  const { url, server } = await startServer(t, { chunkSize: 4096 })
  server.store.create({ id: 'm', width: 100, height: 10, mode: 'RGB' })
  const side = nextServerSocket(server)
  const c = await WireClient.connect(t, url)
  const serverSocket = await side
  await c.request({ op: 'subscribe', ids: ['m'] })
  await c.request({ op: 'subscribe' })
  await c.get('m')
  await c.request({ op: 'put', id: 'm', data: Buffer.alloc(3000, 1) })
  const during = await scrape(url)
  t.equal(during.get('pixelport_connections{transport="ws"}'), 1)
  t.equal(during.get('pixelport_subscriptions'), 2)
  t.equal(during.get('pixelport_bytes_streamed_total{transport="ws"}'), 3000)
  t.equal(during.get('pixelport_bytes_received_total{transport="ws"}'), 3000)
  const gone = once(serverSocket, 'close')
  c.ws.close()
  await gone
  const after = await scrape(url)
  t.equal(after.get('pixelport_connections{transport="ws"}'), 0, 'the connection is counted out')
  t.equal(after.get('pixelport_subscriptions'), 0, 'and its subscriptions')
})
