/**
 * Consistency under a real concurrent writer: a worker thread rewrites the image as fast as it can through
 * shared memory (in place under the seqlock, or by loaning and publishing frame buffers), while the main
 * thread reads copies of the image and of a view. Every copy must be one whole frame whose value matches
 * the generation it was reported with.
 */
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import t, { type Test } from 'tap'
import type { ImageStore } from '../../server/store/image-store.js'
import type { Pieces } from '../../server/store/pixels.js'
import type { SeqlockWriterData } from '../fixtures/seqlock-writer.js'
import { settle } from '../helpers/atomics.js'
import { moduleUrl } from '../helpers/paths.js'
import { newStore } from '../helpers/store.js'

const CONTROL = { STOP: 0, FRAMES: 1 } as const
const WORKER_TOKEN = 1
const READS = 800

/** True when every byte equals the first: the buffer compared with itself shifted by one. */
function uniform (bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return b.subarray(1).equals(b.subarray(0, b.length - 1))
}

/** The fixture is .ts under tap's loader (the worker inherits it) and .js when the tests are built. */
function fixtureUrl (): URL {
  return moduleUrl('test/fixtures/seqlock-writer')
}

interface Writer {
  /** Stop the worker and wait for it; resolves to the frames it committed. */
  stop: () => Promise<number>
}

async function startWriter (t: Test, store: ImageStore, mode: SeqlockWriterData['mode']): Promise<Writer> {
  const d = store.describe('cam')
  if (d.location.kind !== 'block') throw new Error('block image expected')
  const control = new SharedArrayBuffer(8)
  const ctl = new Int32Array(control)
  const workerData: SeqlockWriterData = {
    mode,
    table: store.table.buffer,
    slot: store.slotOf('cam'),
    token: WORKER_TOKEN,
    block: store.blockBuffer(d.location.block)!,
    byteOffset: d.location.byteOffset - d.location.frame * d.location.frameStride,
    byteLength: d.byteLength,
    frameStride: d.location.frameStride,
    control,
    pauseMs: 0.05,
  }
  const worker = new Worker(fixtureUrl(), { workerData })
  const exited = once(worker, 'exit')
  const result = once(worker, 'message') as Promise<[{ frames: number }]>
  t.teardown(async () => {
    Atomics.store(ctl, CONTROL.STOP, 1)
    await exited
  })
  // Start reading only once the writer is really running.
  t.equal(await settle(Atomics.waitAsync(ctl, CONTROL.FRAMES, 0, 20_000), 20_000), 'ok', 'the worker started writing')
  return {
    stop: async () => {
      Atomics.store(ctl, CONTROL.STOP, 1)
      const [{ frames }] = await result
      await exited
      return frames
    },
  }
}

/**
 * Read `cam` and `roi` READS times; every `serverEvery` reads, commit a whole frame from the main thread
 * too. Returns the number of server commits. Stops at the first bad copy.
 */
async function readMany (t: Test, store: ImageStore, serverEvery: number): Promise<{ serverWrites: number, generations: number }> {
  let serverWrites = 0
  let last = -1
  const seen = new Set<number>()
  const fill = (pieces: Pieces): void => {
    // Under the write lock nobody else can commit: the next generation is ours to name. (Whole frames
    // only: a write through the view would leave the image rightly non-uniform.)
    const value = (store.generation('cam') + 1) & 0xff
    for (const p of pieces) p.fill(value)
  }
  for (let i = 0; i < READS; i++) {
    const id = i % 3 === 2 ? 'roi' : 'cam'
    const copy = await store.read(id)
    if (!uniform(copy.bytes)) {
      t.fail(`read ${i} of ${id}: torn frame (generation ${copy.generation})`)
      break
    }
    if (copy.bytes[0] !== (copy.generation & 0xff)) {
      t.fail(`read ${i} of ${id}: bytes ${copy.bytes[0]} are not generation ${copy.generation}`)
      break
    }
    if (copy.generation < last) {
      t.fail(`generation went back from ${last} to ${copy.generation}`)
      break
    }
    last = copy.generation
    seen.add(copy.generation)
    if (serverEvery > 0 && i % serverEvery === serverEvery - 1) {
      // The server's own writer contends for the same lock: neither may interleave with the other.
      await store.update('cam', fill)
      serverWrites++
    }
  }
  return { serverWrites, generations: seen.size }
}

function setup (t: Test, frames: number): ImageStore {
  const store = newStore(t, { blockSize: 1024 * 1024, capacity: 4 * 1024 * 1024 })
  store.create({ id: 'cam', mode: 'L', width: 512, height: 256, frames })
  store.createView('cam', { id: 'roi', x: 100, y: 50, width: 300, height: 100 })
  return store
}

t.test('in-place writes under the seqlock: reads never see a torn frame', async (t) => {
  const store = setup(t, 1)
  const writer = await startWriter(t, store, 'seqlock')
  const { serverWrites, generations } = await readMany(t, store, 100)
  const frames = await writer.stop()
  t.ok(generations >= 10, `reads overlapped many commits (${generations} generations seen, ${frames} worker frames)`)
  t.equal(store.generation('cam'), frames + serverWrites, 'every commit by either writer counted once')
  const final = await store.read('cam')
  t.ok(uniform(final.bytes), 'final frame uniform')
  t.equal(final.bytes[0], final.generation & 0xff)
})

t.test('loan/publish frame buffers: a pinned frame is never rewritten under a reader', async (t) => {
  const store = setup(t, 3)
  const writer = await startWriter(t, store, 'frames')
  const { generations } = await readMany(t, store, 0)
  const frames = await writer.stop()
  t.ok(generations >= 10, `reads overlapped many publishes (${generations} generations seen, ${frames} worker frames)`)
  t.equal(store.generation('cam'), frames, 'every publish counted once')
  const final = await store.read('roi')
  t.ok(uniform(final.bytes))
  t.equal(final.bytes[0], final.generation & 0xff)
})
