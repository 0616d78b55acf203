/**
 * The two ways a soak client talks to the server, behind one interface: HTTP (the project's HttpClient)
 * and WebSocket (RemoteClient). The client loop (client-loop.ts) is written once against it.
 */
import { HttpClient, RemoteClient } from '../../client/remote/index.js'
import { imagePath } from '../../protocol/urls.js'

export type SoakOp = 'create' | 'delete' | 'put' | 'get' | 'list' | 'describe'

export interface SoakTransport {
  readonly kind: 'http' | 'ws'
  /** The name each operation is timed under in the report. */
  readonly ops: Record<SoakOp, string>
  /** Create an L image of `width` x `height` holding `bytes`. */
  create (id: string, width: number, height: number, bytes: Uint8Array): Promise<void>
  /** Overwrite the pixels; resolves with the generation committed. */
  put (id: string, bytes: Uint8Array): Promise<number>
  get (id: string): Promise<{ bytes: Uint8Array, generation: number }>
  delete (id: string): Promise<void>
  /** The whole listing, every page. */
  list (): Promise<void>
  describe (id: string): Promise<void>
  close (): Promise<void>
}

/** What HttpClient and RemoteClient have in common, called the same way. */
interface Common {
  put (id: string, bytes: Uint8Array): Promise<{ generation: number }>
  delete (id: string): Promise<void>
  list (): Promise<unknown>
  describe (id: string): Promise<unknown>
  close (): Promise<void>
}

/** The report's operation names, kept from before the two loops became one. */
const OPS: Record<SoakTransport['kind'], Record<SoakOp, string>> = {
  http: { create: 'http create (POST raw)', delete: 'http delete', put: 'http overwrite (PUT)', get: 'http get data', list: 'http list', describe: 'http describe' },
  ws: { create: 'ws create (chunked put)', delete: 'ws delete', put: 'ws overwrite (chunked put)', get: 'ws get', list: 'ws list', describe: 'ws describe' },
}

function over (kind: SoakTransport['kind'], client: Common, own: Pick<SoakTransport, 'create' | 'get'>): SoakTransport {
  return {
    kind,
    ops: OPS[kind],
    ...own,
    put: async (id, bytes) => (await client.put(id, bytes)).generation,
    delete: async (id) => { await client.delete(id) },
    list: async () => { await client.list() },
    describe: async (id) => { await client.describe(id) },
    close: async () => { await client.close() },
  }
}

export function httpTransport (http: HttpClient): SoakTransport {
  return over('http', http, {
    async create (id, width, height, bytes) {
      await http.create({ width, height, mode: 'L', id }, bytes)
    },
    async get (id) {
      // One request, as a plain HTTP client would: the generation from its header.
      const res = await http.request('GET', imagePath(id, '/data'))
      return { bytes: res.bytes, generation: Number(res.headers['x-pixelport-generation']) }
    },
  })
}

export function wsTransport (client: RemoteClient): SoakTransport {
  return over('ws', client, {
    async create (id, width, height, bytes) {
      await client.put({ width, height, mode: 'L', id }, bytes)
    },
    async get (id) {
      const frame = await client.get(id)
      return { bytes: frame.bytes, generation: frame.generation }
    },
  })
}
