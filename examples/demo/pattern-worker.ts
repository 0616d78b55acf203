/**
 * The demo producer: a worker thread that renders an animated test pattern into a shared frame-buffered
 * image at a steady rate, through the public `pixelport/worker` API (loan → fill → publish).
 * workerData: { id?, width?, height?, fps? }.
 */
import { workerData } from 'node:worker_threads'
import { connect } from '../../client/worker/index.js'

const opts = (workerData ?? {}) as { id?: string, width?: number, height?: number, fps?: number }
const id = opts.id ?? 'demo/pattern'
const width = opts.width ?? 640
const height = opts.height ?? 480
const fps = opts.fps ?? 30

const store = await connect()
try {
  await store.create({ width, height, mode: 'RGBA' }, { id, frames: 3 })
} catch (err) {
  if ((err as { code?: string }).code !== 'PXP_ERR_ALREADY_EXISTS') throw err
}
const image = await store.open(id)

/** Colour bars that scroll sideways, a moving white bar, and a frame counter strip along the bottom. */
function render (data: Uint8Array, t: number): void {
  const bars = [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]]
  const shift = (t * 4) % width
  const sweep = Math.floor((t * 6) % height)
  for (let y = 0; y < height; y++) {
    const row = y * width * 4
    for (let x = 0; x < width; x++) {
      const bar = bars[Math.floor((((x + shift) % width) * bars.length) / width)]
      const i = row + x * 4
      const lit = Math.abs(y - sweep) < 4
      data[i] = lit ? 255 : bar[0]
      data[i + 1] = lit ? 255 : bar[1]
      data[i + 2] = lit ? 255 : bar[2]
      data[i + 3] = 255
    }
  }
  // Bottom strip: the frame number in binary, 16 cells, so a viewer can see frames advance.
  const cell = Math.floor(width / 16)
  for (let y = height - 12; y < height; y++) {
    for (let x = 0; x < 16 * cell; x++) {
      const on = ((t >> (15 - Math.floor(x / cell))) & 1) === 1
      const i = (y * width + x) * 4
      data[i] = data[i + 1] = data[i + 2] = on ? 255 : 0
    }
  }
}

let frame = 0
const interval = 1000 / fps
let next = performance.now()
async function tick (): Promise<void> {
  const loan = await image.loan()
  render(loan.data as Uint8Array, frame++)
  await loan.publish()
  next += interval
  setTimeout(() => { tick().catch(stop) }, Math.max(0, next - performance.now()))
}

function stop (err: unknown): void {
  // The image was deleted or the server is closing: stop quietly.
  const code = (err as { code?: string }).code
  if (code !== 'PXP_ERR_NOT_FOUND' && code !== 'PXP_ERR_CLOSED' && code !== 'PXP_ERR_NOT_LEASED') throw err
  image.release()
  store.close()
}

tick().catch(stop)
