/**
 * The live viewer (`GET /`): the image list with thumbnails, and a live view of one image drawn on a
 * canvas as workers write it. Everything goes through the same RemoteClient Node.js programs use, over the
 * page's own origin (no CORS): `list` and an all-images subscription keep the list current, a `latest`
 * subscription with data feeds the canvas, and thumbnails are `GET /images/:id.png`.
 */
import { RemoteClient, type ImageDescriptor, type RemoteFrame, type RemoteSubscription } from '../client/remote/index.js'
import { toRgba } from './pixels.js'
import { FrameStats } from './stats.js'
import { linkedImage, linkImage, loadToken, saveToken } from './token.js'

/** Thumbnails fetched at once, at most: encoding PNGs costs the server CPU. */
const THUMB_CONCURRENCY = 3
/** A thumbnail of an image that keeps changing is fetched again after this long. */
const THUMB_REFRESH_MS = 5000
const RECONNECT_MS = 2000

function element<T extends HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new TypeError(`the page has no #${id}`)
  return el as T
}

const ui = {
  status: element('status'),
  list: element<HTMLUListElement>('image-list'),
  empty: element('empty'),
  tokenForm: element<HTMLFormElement>('token-form'),
  tokenInput: element<HTMLInputElement>('token-input'),
  tokenMessage: element('token-message'),
  title: element('live-title'),
  canvas: element<HTMLCanvasElement>('canvas'),
  fps: element('stat-fps'),
  generation: element('stat-generation'),
  skipped: element('stat-skipped'),
  info: element('live-info'),
  note: element('live-note'),
  isolated: element('isolated'),
  protocol: element('protocol'),
}
const context = ui.canvas.getContext('2d')

interface Entry {
  descriptor: ImageDescriptor
  item: HTMLLIElement
  caption: HTMLElement
  img: HTMLImageElement
  thumbUrl: string | null
  /** Generation the thumbnail shows (-1: none yet), and when it was fetched. */
  thumbGeneration: number
  thumbAt: number
  visible: boolean
}

let token: string | null = loadToken()
let client: RemoteClient | null = null
/** Bumped on every (re)connection: loops of an older one stop touching the page. */
let session = 0
let selected: string | null = linkedImage()
let live: LiveView | null = null
const entries = new Map<string, Entry>()

function codeOf (err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'PXP_ERR_INTERNAL'
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function setStatus (text: string, state: 'ok' | 'busy' | 'error'): void {
  ui.status.textContent = text
  ui.status.dataset.state = state
}

// ---- connection ---------------------------------------------------------------------------------------

function wsUrl (): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
}

async function connect (): Promise<void> {
  const mine = ++session
  live?.stop()
  live = null
  void client?.close()
  client = null
  setStatus('connecting…', 'busy')
  let next: RemoteClient
  try {
    next = await RemoteClient.connect(wsUrl(), { clientName: 'pixelport-viewer', token: token ?? undefined })
  } catch (err) {
    if (mine !== session) return
    if (codeOf(err) === 'PXP_ERR_UNAUTHORIZED') return askForToken(token === null ? 'This server requires a token.' : 'The server refused that token.')
    return lost(mine, err)
  }
  if (mine !== session) {
    void next.close()
    return
  }
  client = next
  ui.tokenForm.hidden = true
  ui.protocol.textContent = `protocol ${next.protocol}`
  try {
    // Subscribed before listing, so nothing that changes in between is missed.
    const changes = await next.subscribe({ policy: 'latest' })
    showList(await next.list())
    setStatus('connected', 'ok')
    void followChanges(changes, mine)
    if (selected !== null) show(selected)
  } catch (err) {
    if (mine === session) lost(mine, err)
  }
}

/** The connection failed or ended: say so and try again shortly (or ask for a token). */
function lost (mine: number, err: unknown): void {
  if (mine !== session) return
  session++
  live?.stop()
  live = null
  const old = client
  client = null
  void old?.close()
  if (codeOf(err) === 'PXP_ERR_UNAUTHORIZED') return askForToken('The server asks for a token again.')
  setStatus(`disconnected (${codeOf(err)}), retrying…`, 'error')
  setTimeout(() => { void connect() }, RECONNECT_MS)
}

function askForToken (message: string): void {
  session++
  setStatus('token required', 'error')
  ui.tokenMessage.textContent = message
  ui.tokenForm.hidden = false
  ui.tokenInput.focus()
}

ui.tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const value = ui.tokenInput.value.trim()
  if (value === '') return
  token = value
  saveToken(value)
  ui.tokenInput.value = ''
  ui.tokenForm.hidden = true
  for (const entry of entries.values()) entry.thumbGeneration = -1
  void connect()
})

// ---- the image list -----------------------------------------------------------------------------------

function showList (descriptors: ImageDescriptor[]): void {
  const ids = new Set(descriptors.map((d) => d.id))
  for (const id of [...entries.keys()]) if (!ids.has(id)) remove(id)
  for (const d of [...descriptors].sort((a, b) => a.id.localeCompare(b.id))) upsert(d)
}

async function followChanges (changes: RemoteSubscription, mine: number): Promise<void> {
  try {
    for await (const event of changes) {
      if (mine !== session) break
      if (event.type === 'deleted') remove(event.id)
      else upsert(event.descriptor)
    }
  } catch (err) {
    lost(mine, err)
  }
}

const thumbObserver = new IntersectionObserver((seen) => {
  for (const s of seen) {
    const entry = entries.get((s.target as HTMLElement).dataset.id ?? '')
    if (entry === undefined) continue
    entry.visible = s.isIntersecting
    if (entry.visible && entry.thumbGeneration !== entry.descriptor.generation) queueThumb(entry)
  }
})

function upsert (descriptor: ImageDescriptor): void {
  let entry = entries.get(descriptor.id)
  if (entry === undefined) {
    const item = document.createElement('li')
    item.dataset.id = descriptor.id
    const button = document.createElement('button')
    button.type = 'button'
    const img = document.createElement('img')
    img.alt = ''
    img.width = 96
    img.height = 72
    const name = document.createElement('span')
    name.className = 'name'
    name.textContent = descriptor.id
    const caption = document.createElement('span')
    caption.className = 'caption'
    button.append(img, name, caption)
    button.addEventListener('click', () => show(descriptor.id))
    item.append(button)
    entry = { descriptor, item, caption, img, thumbUrl: null, thumbGeneration: -1, thumbAt: 0, visible: false }
    entries.set(descriptor.id, entry)
    insertSorted(item, descriptor.id)
    thumbObserver.observe(item)
  }
  const replaced = entry.descriptor.generation > descriptor.generation
  entry.descriptor = descriptor
  if (replaced) entry.thumbGeneration = -1
  const size = descriptor.mode !== null ? `${descriptor.mode} ${descriptor.width}×${descriptor.height}` : `${descriptor.typestr} [${descriptor.shape.join('×')}]`
  entry.caption.textContent = `${size} · gen ${descriptor.generation}`
  entry.item.setAttribute('aria-current', String(descriptor.id === selected))
  ui.empty.hidden = entries.size > 0
}

function insertSorted (item: HTMLLIElement, id: string): void {
  for (const other of ui.list.children) {
    if (((other as HTMLElement).dataset.id ?? '').localeCompare(id) > 0) {
      ui.list.insertBefore(item, other)
      return
    }
  }
  ui.list.append(item)
}

function remove (id: string): void {
  const entry = entries.get(id)
  if (entry === undefined) return
  thumbObserver.unobserve(entry.item)
  entry.item.remove()
  if (entry.thumbUrl !== null) URL.revokeObjectURL(entry.thumbUrl)
  entries.delete(id)
  ui.empty.hidden = entries.size > 0
}

// ---- thumbnails ---------------------------------------------------------------------------------------

const thumbQueue: Entry[] = []
let thumbsFetching = 0

function queueThumb (entry: Entry): void {
  if (!thumbQueue.includes(entry)) thumbQueue.push(entry)
  pumpThumbs()
}

function pumpThumbs (): void {
  while (thumbsFetching < THUMB_CONCURRENCY && thumbQueue.length > 0) {
    const entry = thumbQueue.shift()!
    if (entries.get(entry.descriptor.id) !== entry) continue
    thumbsFetching++
    fetchThumb(entry).catch(() => entry.item.classList.add('no-thumb')).finally(() => {
      thumbsFetching--
      pumpThumbs()
    })
  }
}

/**
 * A PNG of the image, fetched rather than put in `img.src` so that it can carry the token, and revalidated
 * (`no-cache`: the server answers 304 when the generation did not change).
 */
async function fetchThumb (entry: Entry): Promise<void> {
  const generation = entry.descriptor.generation
  entry.thumbAt = performance.now()
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
  const res = await fetch(`/images/${encodeURIComponent(entry.descriptor.id)}.png`, { headers, cache: 'no-cache' })
  if (res.status === 401) return askForToken('The server requires a token for pictures.')
  if (!res.ok) {
    entry.item.classList.add('no-thumb')
    return
  }
  const url = URL.createObjectURL(await res.blob())
  if (entry.thumbUrl !== null) URL.revokeObjectURL(entry.thumbUrl)
  entry.thumbUrl = url
  entry.img.src = url
  entry.thumbGeneration = generation
  entry.item.classList.remove('no-thumb')
}

/** Images that changed get a new thumbnail now and then (a live image would otherwise cost a PNG a frame). */
setInterval(() => {
  const now = performance.now()
  for (const entry of entries.values()) {
    if (entry.visible && entry.thumbGeneration !== entry.descriptor.generation && now - entry.thumbAt >= THUMB_REFRESH_MS) queueThumb(entry)
  }
}, 1000)

// ---- the live view ------------------------------------------------------------------------------------

/**
 * One image on the canvas, fed by a `latest` subscription with data, on a connection of its own: the
 * server may have a few frames queued for a live view, and closing its connection when another image is
 * chosen drops them at once, where they would delay the next image's frames on a shared connection.
 */
class LiveView {
  readonly stats = new FrameStats()
  private client: RemoteClient | null = null
  private stopped = false

  constructor (readonly id: string) {}

  async run (): Promise<void> {
    const client = await RemoteClient.connect(wsUrl(), { clientName: 'pixelport-viewer-live', token: token ?? undefined })
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
      ui.note.textContent = 'No such image (yet): waiting for it to be created.'
    }
    for await (const event of subscription) {
      if (event.type === 'deleted') {
        ui.note.textContent = 'The image was deleted: waiting for it to be created again.'
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
    if (this.stopped || context === null) return
    const { descriptor } = frame
    let picture
    try {
      picture = toRgba({ shape: frame.shape, typestr: descriptor.typestr, mode: descriptor.mode, bytes: frame.bytes })
    } catch (err) {
      ui.note.textContent = `Cannot draw this image: ${messageOf(err)}`
      return
    }
    const { width, height, rgba, range } = picture
    if (ui.canvas.width !== width || ui.canvas.height !== height) {
      ui.canvas.width = width
      ui.canvas.height = height
    }
    context.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, width, height), 0, 0)
    this.stats.record(frame.generation, performance.now())
    ui.canvas.dataset.generation = String(frame.generation)
    const what = descriptor.mode ?? descriptor.typestr
    ui.info.textContent = `${what} ${width}×${height}` + (range === null ? '' : ` · shown from ${range[0]} (black) to ${range[1]} (white)`)
    ui.note.textContent = ''
  }
}

function show (id: string): void {
  selected = id
  linkImage(id)
  for (const entry of entries.values()) entry.item.setAttribute('aria-current', String(entry.descriptor.id === id))
  live?.stop()
  live = null
  ui.title.textContent = id
  ui.note.textContent = ''
  ui.info.textContent = ''
  // Nothing of the previous image may show under this one's name while its first frame is on its way.
  context?.clearRect(0, 0, ui.canvas.width, ui.canvas.height)
  delete ui.canvas.dataset.generation
  // Started once connected (connect() shows the selected image), so it uses a token that works.
  if (client === null) return
  const view = new LiveView(id)
  live = view
  const mine = session
  view.run().catch((err: unknown) => {
    if (live !== view) return
    if (codeOf(err) === 'PXP_ERR_CLOSED' || codeOf(err) === 'PXP_ERR_UNAUTHORIZED') lost(mine, err)
    else ui.note.textContent = `${codeOf(err)}: ${messageOf(err)}`
  })
}

addEventListener('hashchange', () => {
  const id = linkedImage()
  if (id !== null && id !== selected) show(id)
})

setInterval(() => {
  const stats = live?.stats
  ui.fps.textContent = stats === undefined ? '–' : String(stats.fps(performance.now()))
  ui.generation.textContent = stats === undefined || stats.generation < 0 ? '–' : String(stats.generation)
  ui.skipped.textContent = stats === undefined ? '–' : String(stats.skipped)
}, 250)

// The server sends COOP/COEP, so this page could share memory with workers (SharedArrayBuffer).
ui.isolated.textContent = String(globalThis.crossOriginIsolated === true)
void connect()
