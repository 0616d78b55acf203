/**
 * The conformance suite over plain HTTP: what a client with nothing but `fetch` gets (docs/http.md), held
 * to the same behaviours as worker threads, attached processes and the WebSocket client. HTTP has no push,
 * so a plain-HTTP client watches over the WebSocket (`pixelport/client`), as the Python package does.
 */
import t from 'tap'
import { RemoteClient } from '../../client/remote/index.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { errorFromBody } from '../../protocol/errors.js'
import { startServer } from '../helpers/server.js'
import { conformance, watchRemote, type ConformanceClient } from './suite.js'

/** `fetch` that throws the server's `{ code, message }` as a PixelportError, as every client of ours does. */
async function request (url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, init)
  if (!res.ok) throw errorFromBody(await res.json() as { code: string, message: string })
  return res
}

function adapter (base: string, ws: RemoteClient): ConformanceClient {
  const image = (id: string, suffix = ''): string => `${base}/images/${encodeURIComponent(id)}${suffix}`
  const json = { 'content-type': 'application/json' }
  return {
    create: async (spec, options) => await (await request(`${base}/images`, { method: 'POST', headers: json, body: JSON.stringify({ ...spec, ...options }) })).json() as ImageDescriptor,
    list: async () => {
      // Pages: follow `next` to the end, as docs/http.md says a client must.
      const all: ImageDescriptor[] = []
      for (let cursor: string | null = null; ;) {
        const page = await (await request(`${base}/images${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`)).json() as { images: ImageDescriptor[], next: string | null }
        all.push(...page.images)
        if (page.next === null) return all
        cursor = page.next
      }
    },
    describe: async (id) => await (await request(image(id))).json() as ImageDescriptor,
    write: async (id, bytes) => (await (await request(image(id, '/data'), { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes })).json() as { generation: number }).generation,
    read: async (id) => {
      const res = await request(image(id, '/data'))
      return { generation: Number(res.headers.get('x-pixelport-generation')), bytes: new Uint8Array(await res.arrayBuffer()) }
    },
    delete: async (id) => { await request(image(id), { method: 'DELETE' }) },
    watch: async () => await watchRemote(ws),
    close: async () => {},
  }
}

conformance(t, {
  name: 'http',
  async setup (t, count) {
    const { server, url } = await startServer(t)
    const ws = await RemoteClient.connect(url.replace(/^http/, 'ws') + '/ws')
    t.teardown(async () => await ws.close())
    return { server, clients: Array.from({ length: count }, () => adapter(url, ws)) }
  },
})
