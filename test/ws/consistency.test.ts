/**
 * No torn frames over the wire while a worker thread writes: a real worker rewrites the image through
 * shared memory as fast as it can (in place under the seqlock, or by loan/publish of frame buffers) while
 * remote clients get whole images, regions and subscription frames. Every copy must be uniform (the
 * writer fills a frame with one value) and that value must be the low byte of the generation reported.
 */
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import t, { type Test } from 'tap'
import type { PixelportServer } from '../../server/server.js'
import type { SeqlockWriterData } from '../fixtures/seqlock-writer.js'
import { settle } from '../helpers/atomics.js'
import { moduleUrl } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'

const CONTROL = { STOP: 0, FRAMES: 1 } as const

function fixtureUrl (): URL {
  return moduleUrl('test/fixtures/seqlock-writer')
}

function uniform (bytes: Buffer): boolean {
  return bytes.subarray(1).equals(bytes.subarray(0, bytes.length - 1))
}

async function startWriter (t: Test, server: PixelportServer, mode: SeqlockWriterData['mode']): Promise<() => Promise<void>> {
  const { store } = server
  const d = store.describe('cam')
  if (d.location.kind !== 'block') throw new Error('block image expected')
  const control = new SharedArrayBuffer(8)
  const ctl = new Int32Array(control)
  const worker = new Worker(fixtureUrl(), {
    workerData: {
      mode,
      table: store.table.buffer,
      slot: store.slotOf('cam'),
      token: 1,
      block: store.blockBuffer(d.location.block)!,
      byteOffset: d.location.byteOffset - d.location.frame * d.location.frameStride,
      byteLength: d.byteLength,
      frameStride: d.location.frameStride,
      control,
      pauseMs: 0.05,
    } satisfies SeqlockWriterData,
  })
  const exited = once(worker, 'exit')
  const stop = async (): Promise<void> => {
    Atomics.store(ctl, CONTROL.STOP, 1)
    await exited
  }
  t.teardown(stop)
  t.equal(await settle(Atomics.waitAsync(ctl, CONTROL.FRAMES, 0, 20_000), 20_000), 'ok', 'the worker is writing')
  return stop
}

for (const mode of ['seqlock', 'frames'] as const) {
  t.test(`gets, regions and subscription frames are whole generations while a worker writes (${mode})`, async (t) => {
    const { url, server } = await startServer(t, { chunkSize: 16 * 1024 })
    server.store.create({ id: 'cam', width: 160, height: 120, mode: 'RGBA', ...(mode === 'frames' ? { frames: 3 } : {}) })
    const stop = await startWriter(t, server, mode)
    const c = await WireClient.connect(t, url)
    const { sub } = await c.request({ op: 'subscribe', ids: ['cam'], policy: 'latest', data: true })
    let bad = 0
    let lastGeneration = -1
    for (let i = 0; i < 30; i++) {
      const region = { x: i % 100, y: i % 60, width: 60, height: 60 }
      const [whole, part] = await Promise.all([c.get('cam'), c.get('cam', { region })])
      for (const { frame, bytes } of [whole, part]) {
        if (!uniform(bytes) || bytes[0] !== (frame.generation & 0xff)) bad++
      }
      t.ok(part.frame.generation >= lastGeneration || i === 0, 'generations move forward')
      lastGeneration = part.frame.generation
    }
    // A few subscription frames too.
    for (let i = 0; i < 5; i++) {
      const frame = await c.next((m) => m.op === 'frame' && m.sub === sub)
      const { bytes } = await c.collect(frame as never)
      if (!uniform(bytes) || bytes[0] !== (frame.generation & 0xff)) bad++
    }
    await stop()
    t.equal(bad, 0, 'no torn or mislabelled copy')
    t.ok(lastGeneration > 5, `the writer committed (generation ${lastGeneration})`)
  })
}
