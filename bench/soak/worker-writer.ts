/**
 * A soak worker thread: creates its images through `pixelport/worker`, then writes self-verifying frames
 * into them until told to stop — a plain image by write() (seqlock) and a frame-buffered one by loan() and
 * publish() — reporting every committed version to the main thread (which treats it as acknowledged).
 * Messages out: `{ op: 'created', id, width, height }`, `{ op: 'acked', id, version }`, `{ op: 'done', acked }`.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connect, type SharedImage } from '../../client/worker/index.js'
import { writeFrame } from './frames.js'

interface Config { tag: number, prefix: string, width: number, height: number, pauseMs: number }

const config = (workerData as { soak: Config }).soak
const store = await connect()
let stopping = false
const onMessage = (msg: unknown): void => { if (msg === 'stop') stopping = true }
parentPort!.on('message', onMessage)

const acked: Record<string, number> = {}
const images: Array<{ image: SharedImage, version: number }> = []
for (const [suffix, frames] of [['plain', 1], ['frames', 3]] as const) {
  const id = `${config.prefix}/${suffix}`
  await store.create({ width: config.width, height: config.height, mode: 'L' }, { id, frames })
  const image = await store.open(id)
  // Version 1 before anyone is told: readers that learn of the image never see the blank frame.
  await image.write((data) => writeFrame(data as Uint8Array, config.width, config.height, 1, config.tag))
  acked[id] = 1
  images.push({ image, version: 1 })
  parentPort!.postMessage({ op: 'created', id, width: config.width, height: config.height })
}

while (!stopping) {
  for (const entry of images) {
    const version = entry.version + 1
    let generation: number
    if (entry.image.frames > 1) {
      const loan = await entry.image.loan()
      writeFrame(loan.data as Uint8Array, config.width, config.height, version, config.tag)
      generation = await loan.publish()
    } else {
      generation = await entry.image.write((data) => writeFrame(data as Uint8Array, config.width, config.height, version, config.tag))
    }
    // Sole writer: every commit is one generation, so the version written must be the generation committed.
    if (generation !== version) throw new Error(`${entry.image.id}: wrote version ${version}, committed generation ${generation}`)
    entry.version = version
    acked[entry.image.id] = version
    parentPort!.postMessage({ op: 'acked', id: entry.image.id, version })
  }
  await new Promise((resolve) => setTimeout(resolve, config.pauseMs))
}
for (const { image } of images) image.release()
parentPort!.postMessage({ op: 'done', acked })
// Nothing may keep the thread alive now: the listener on parentPort would.
parentPort!.off('message', onMessage)
store.close()
