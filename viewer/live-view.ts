/**
 * The live view: one image drawn on the page's canvas as its writers commit.
 */
import type { RemoteClient, RemoteFrame } from '../client/remote/index.js'
import { codeOf, messageOf } from './errors.js'
import { toRgba } from './pixels.js'
import { FrameStats } from './stats.js'

/** The parts of the page a live view draws on. */
export interface LiveSurface {
  canvas: HTMLCanvasElement
  context: CanvasRenderingContext2D | null
  info: HTMLElement
  note: HTMLElement
  placeholder: HTMLElement
}

/**
 * One image on the canvas, fed by a `latest` subscription with data, on a connection of its own: the
 * server may have a few frames queued for a live view, and closing its connection when another image is
 * chosen drops them at once, where they would delay the next image's frames on a shared connection.
 */
export class LiveView {
  readonly stats = new FrameStats()
  private client: RemoteClient | null = null
  private stopped = false

  constructor (readonly id: string, private readonly ui: LiveSurface, private readonly connect: () => Promise<RemoteClient>) {}

  async run (): Promise<void> {
    const client = await this.connect()
    this.client = client
    if (this.stopped) {
      await client.close()
      return
    }
    const subscription = await client.subscribe({ ids: [this.id], policy: 'latest', data: true })
    // The current pixels first: an image nobody writes sends no event until somebody does.
    try {
      this.draw(await client.get(this.id))
    } catch (err) {
      if (codeOf(err) !== 'PXP_ERR_NOT_FOUND') throw err
      this.ui.note.textContent = 'No such image (yet): waiting for it to be created.'
    }
    for await (const event of subscription) {
      if (event.type === 'deleted') {
        this.ui.note.textContent = 'The image was deleted: waiting for it to be created again.'
        continue
      }
      // A created event starts over at a lower generation; an update older than what is shown is stale.
      if (event.frame !== undefined && (event.type === 'created' || event.generation > this.stats.generation)) this.draw(event.frame)
    }
  }

  stop (): void {
    this.stopped = true
    void this.client?.close()
  }

  private draw (frame: RemoteFrame): void {
    const { context } = this.ui
    if (this.stopped || context === null) return
    const { descriptor } = frame
    let picture
    try {
      picture = toRgba({ shape: frame.shape, typestr: descriptor.typestr, mode: descriptor.mode, bytes: frame.bytes })
    } catch (err) {
      this.ui.note.textContent = `Cannot draw this image: ${messageOf(err)}`
      return
    }
    const { width, height, rgba, range } = picture
    if (this.ui.canvas.width !== width || this.ui.canvas.height !== height) {
      this.ui.canvas.width = width
      this.ui.canvas.height = height
    }
    context.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, width, height), 0, 0)
    this.stats.record(frame.generation, performance.now())
    this.ui.canvas.dataset.generation = String(frame.generation)
    const what = descriptor.mode ?? descriptor.typestr
    this.ui.canvas.hidden = false
    this.ui.placeholder.hidden = true
    this.ui.info.textContent = `${what} ${width}×${height}` + (range === null ? '' : ` · shown from ${range[0]} (black) to ${range[1]} (white)`)
    this.ui.note.textContent = ''
  }
}
