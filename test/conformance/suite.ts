/**
 * One conformance suite, every transport: the behaviours a client may rely on whether it is a worker thread
 * mapping shared memory or a remote client receiving copies. Each transport supplies an adapter.
 */
import type { Test } from 'tap'
import type { RemoteClient, RemoteEvent } from '../../client/remote/index.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { PixelportServer } from '../../server/server.js'
import { until } from '../helpers/until.js'

export interface ChangeEvent { type: 'created' | 'updated' | 'deleted', id: string, generation: number }

export interface ConformanceClient {
  create (spec: Record<string, unknown>, options: { id: string, readonly?: boolean }): Promise<ImageDescriptor>
  list (): Promise<ImageDescriptor[]>
  describe (id: string): Promise<ImageDescriptor>
  /** Overwrite the whole image with C-order bytes; resolves to the new generation. */
  write (id: string, bytes: Uint8Array): Promise<number>
  /** A consistent copy in C order. */
  read (id: string): Promise<{ generation: number, bytes: Uint8Array }>
  delete (id: string): Promise<void>
  /** Start collecting change events (all images). */
  watch (): Promise<{ take: () => Promise<ChangeEvent[]>, stop: () => Promise<void> }>
  close (): Promise<void>
}

export interface Transport {
  name: string
  /** A fresh server and `clients` connected clients; everything is closed on teardown. */
  setup (t: Test, clients: number): Promise<{ server: PixelportServer, clients: ConformanceClient[] }>
}

function random (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code ?? 'NO_CODE'
  }
  return 'NO_ERROR'
}

/** Take events until `done` holds for all taken so far (fails with what arrived if it never does). */
async function takeUntil (take: () => Promise<ChangeEvent[]>, done: (all: ChangeEvent[]) => boolean): Promise<ChangeEvent[]> {
  let all: ChangeEvent[] = []
  await until(async () => done(all = all.concat(await take())), { what: () => `the expected events; arrived: ${JSON.stringify(all)}` })
  return all
}

/** `watch` for the clients whose events come from a RemoteClient subscription (remote, and HTTP's WebSocket). */
export async function watchRemote (client: RemoteClient): Promise<{ take: () => Promise<ChangeEvent[]>, stop: () => Promise<void> }> {
  const sub = await client.subscribe({ policy: 'all' })
  let seen: ChangeEvent[] = []
  const pump = (async () => {
    for await (const e of sub as AsyncIterable<RemoteEvent>) seen.push({ type: e.type, id: e.id, generation: e.generation })
  })()
  return {
    take: async () => { const out = seen; seen = []; return out },
    stop: async () => { await sub.return(); await pump },
  }
}

export function conformance (tap: Test, transport: Transport): void {
  tap.test(`${transport.name}: create, describe, list`, async (t) => {
    const { clients: [c] } = await transport.setup(t, 1)
    const d = await c.create({ width: 7, height: 5, mode: 'RGB' }, { id: 'conf/a' })
    t.same([d.id, d.mode, d.shape, d.typestr, d.generation], ['conf/a', 'RGB', [5, 7, 3], '|u1', 0])
    t.same(d.__array_interface__.shape, [5, 7, 3])
    const again = await c.describe('conf/a')
    t.equal(again.byteLength, 105)
    t.ok((await c.list()).some((x) => x.id === 'conf/a'), 'listed')
    const raw = await c.create({ shape: [3, 4], typestr: '<f4' }, { id: 'conf/raw' })
    t.same([raw.mode, raw.typestr, raw.byteLength], ['F', '<f4', 48])
  })

  tap.test(`${transport.name}: read what was written, generation by generation`, async (t) => {
    const { server, clients: [c] } = await transport.setup(t, 1)
    await c.create({ width: 33, height: 17, mode: 'RGBA' }, { id: 'rw' })
    for (let i = 1; i <= 3; i++) {
      const bytes = random(33 * 17 * 4, i)
      t.equal(await c.write('rw', bytes), i, `write ${i} commits generation ${i}`)
      const back = await c.read('rw')
      t.equal(back.generation, i)
      t.same(Buffer.from(back.bytes), Buffer.from(bytes), `read ${i} is byte-exact`)
      t.same(Buffer.from((await server.store.read('rw')).bytes), Buffer.from(bytes), 'the server sees it too')
    }
    const wide = await c.create({ shape: [4, 5], typestr: '<u2' }, { id: 'rw16' })
    const bytes16 = random(wide.byteLength, 99)
    await c.write('rw16', bytes16)
    t.same(Buffer.from((await c.read('rw16')).bytes), Buffer.from(bytes16), '16-bit round trip')
  })

  tap.test(`${transport.name}: a write by one client is what another reads`, async (t) => {
    const { clients: [a, b] } = await transport.setup(t, 2)
    await a.create({ width: 16, height: 16, mode: 'L' }, { id: 'shared' })
    const bytes = random(256, 7)
    await a.write('shared', bytes)
    const seen = await b.read('shared')
    t.equal(seen.generation, 1)
    t.same(Buffer.from(seen.bytes), Buffer.from(bytes))
  })

  tap.test(`${transport.name}: errors by code, and failures change nothing`, async (t) => {
    const { server, clients: [c] } = await transport.setup(t, 1)
    await c.create({ width: 4, height: 4, mode: 'L' }, { id: 'e' })
    await c.create({ width: 4, height: 4, mode: 'L' }, { id: 'e/ro', readonly: true })
    t.equal(await codeOf(c.read('missing')), 'PXP_ERR_NOT_FOUND')
    t.equal(await codeOf(c.describe('missing')), 'PXP_ERR_NOT_FOUND')
    t.equal(await codeOf(c.delete('missing')), 'PXP_ERR_NOT_FOUND')
    t.equal(await codeOf(c.create({ width: 4, height: 4, mode: 'L' }, { id: 'e' })), 'PXP_ERR_ALREADY_EXISTS')
    t.equal(await codeOf(c.create({ width: 4, height: 4, mode: 'NOPE' }, { id: 'e2' })), 'PXP_ERR_BAD_MODE')
    t.equal(await codeOf(c.create({ width: 4, height: 4, mode: 'L' }, { id: '../escape' })), 'PXP_ERR_BAD_ID')
    t.equal(await codeOf(c.write('e', new Uint8Array(15))), 'PXP_ERR_BYTE_COUNT')
    t.equal(await codeOf(c.write('e/ro', new Uint8Array(16))), 'PXP_ERR_READONLY')
    t.equal(server.store.generation('e'), 0, 'failed writes committed nothing')
    t.same(server.store.ids().sort(), ['e', 'e/ro'], 'failed creates left nothing behind')
  })

  tap.test(`${transport.name}: change events arrive in order`, async (t) => {
    const { server, clients: [c] } = await transport.setup(t, 1)
    const watch = await c.watch()
    await c.create({ width: 2, height: 2, mode: 'L' }, { id: 'ev' })
    await c.write('ev', new Uint8Array(4).fill(1))
    await server.store.write('ev', new Uint8Array(4).fill(2))
    await c.write('ev', new Uint8Array(4).fill(3))
    await c.delete('ev')
    const events = (await takeUntil(watch.take, (all) => all.some((e) => e.type === 'deleted'))).filter((e) => e.id === 'ev')
    await watch.stop()
    t.same(events[0], { type: 'created', id: 'ev', generation: 0 }, 'created first')
    t.same(events.at(-1), { type: 'deleted', id: 'ev', generation: 3 }, 'deleted last')
    const gens = events.slice(1, -1).map((e) => e.generation)
    t.ok(events.slice(1, -1).every((e) => e.type === 'updated'), 'updates in between')
    t.same(gens, [...gens].sort((x, y) => x - y), 'generations only grow')
    t.equal(gens.at(-1), 3, 'the last update names the last generation')
  })

  tap.test(`${transport.name}: delete`, async (t) => {
    const { server, clients: [c] } = await transport.setup(t, 1)
    await c.create({ width: 2, height: 2, mode: 'L' }, { id: 'gone' })
    await c.delete('gone')
    t.equal(await codeOf(c.read('gone')), 'PXP_ERR_NOT_FOUND')
    t.notOk((await c.list()).some((x) => x.id === 'gone'))
    t.equal(server.store.has('gone'), false)
  })
}
