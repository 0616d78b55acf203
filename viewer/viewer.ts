/**
 * The live viewer (`GET /`): the image list with thumbnails, and a live view of one image drawn on a
 * canvas as workers write it. Everything goes through the same RemoteClient Node.js programs use, over the
 * page's own origin (no CORS): `list` and an all-images subscription keep the list current, a `latest`
 * subscription with data feeds the canvas, and thumbnails are small pictures the server derives (thumbs.ts).
 *
 * Alive on arrival: without `#image=` in the URL the page opens the animated demo (`demo/pattern`), else the
 * first image that changes within a moment, else the first in the list. An image that is no picture (1-D,
 * 4-D, 5 channels…) gets a placeholder that says why, in the list and in the live view.
 */
import { RemoteClient, type ImageDescriptor, type RemoteSubscription } from '../client/remote/index.js'
import { codeOf, messageOf } from './errors.js'
import { LiveView, type LiveSurface } from './live-view.js'
import { whyNotDrawable } from './pixels.js'
import { Thumbnails, type ThumbTile } from './thumbs.js'
import { linkedImage, linkImage, loadToken, saveToken } from './token.js'

const RECONNECT_MS = 2000
/** The image opened when the URL names none, if the server has it. */
const DEMO_ID = 'demo/pattern'
/** Without the demo, how long to wait for some image to change (a live one) before opening the first. */
const PICK_LIVE_MS = 1500
/** What the demo pattern shows, for the note under it. */
const NOTES: Readonly<Record<string, string>> = {
  [DEMO_ID]: 'Colour bars scroll sideways and a white line sweeps down, one step per frame. The black and white ' +
    'strip along the bottom is the frame number in binary (16 cells, most significant bit on the left): ' +
    'the cells on the right flicker as frames arrive, so a stalled or torn frame shows at once.',
}

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
  placeholder: element('placeholder'),
  about: element('live-about'),
  sort: element<HTMLSelectElement>('sort'),
  fps: element('stat-fps'),
  generation: element('stat-generation'),
  skipped: element('stat-skipped'),
  info: element('live-info'),
  note: element('live-note'),
  isolated: element('isolated'),
  protocol: element('protocol'),
}
const surface: LiveSurface = { canvas: ui.canvas, context: ui.canvas.getContext('2d'), info: ui.info, note: ui.note, placeholder: ui.placeholder }

interface Entry extends ThumbTile {
  caption: HTMLElement
  label: HTMLElement
}

let token: string | null = loadToken()
let client: RemoteClient | null = null
/** Bumped on every (re)connection: loops of an older one stop touching the page. */
let session = 0
let selected: string | null = linkedImage()
let live: LiveView | null = null
const entries = new Map<string, Entry>()
/** Waiting to open an image on our own (the URL named none and nobody chose one yet). */
let autoPick = selected === null
let pickTimer: ReturnType<typeof setTimeout> | null = null
const thumbs = new Thumbnails(() => token, () => askForToken('The server requires a token for pictures.'))


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
    else pickFirst()
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
  for (const entry of entries.values()) entry.generation = -1
  void connect()
})

// ---- the image list -----------------------------------------------------------------------------------

/**
 * Order of the list. The API lists pages in id order and says nothing of creation time, so the page sorts
 * itself: by name (id), or by generation (the busiest images first; re-sorted once a second, not per frame).
 */
type SortKey = 'name' | 'generation'
const COMPARE: Readonly<Record<SortKey, (a: ImageDescriptor, b: ImageDescriptor) => number>> = {
  name: (a, b) => a.id.localeCompare(b.id),
  generation: (a, b) => b.generation - a.generation || a.id.localeCompare(b.id),
}
let sortKey: SortKey = ui.sort.value === 'generation' ? 'generation' : 'name'

function showList (descriptors: ImageDescriptor[]): void {
  const ids = new Set(descriptors.map((d) => d.id))
  for (const id of [...entries.keys()]) if (!ids.has(id)) remove(id)
  for (const d of descriptors) upsert(d)
  reorder()
}

/** Put the list items in the chosen order, moving only what is out of place. */
function reorder (): void {
  const sorted = [...entries.values()].sort((a, b) => COMPARE[sortKey](a.descriptor, b.descriptor))
  sorted.forEach((entry, i) => {
    if (ui.list.children[i] !== entry.item) ui.list.insertBefore(entry.item, ui.list.children[i] ?? null)
  })
}

ui.sort.addEventListener('change', () => {
  sortKey = ui.sort.value === 'generation' ? 'generation' : 'name'
  reorder()
})

async function followChanges (changes: RemoteSubscription, mine: number): Promise<void> {
  try {
    for await (const event of changes) {
      if (mine !== session) break
      if (event.type === 'deleted') {
        remove(event.id)
        continue
      }
      const known = entries.has(event.id)
      upsert(event.descriptor)
      if (!known) reorder()
      // The first image seen changing is a live one (and the demo may appear late): open it if the page is
      // still waiting to pick.
      if (autoPick && (event.type === 'updated' || event.id === DEMO_ID)) pick(event.id)
    }
  } catch (err) {
    lost(mine, err)
  }
}

/** Nothing chosen yet: the demo, or the first live image, or (after a moment) the first one listed. */
function pickFirst (): void {
  if (!autoPick) return
  if (entries.has(DEMO_ID)) return pick(DEMO_ID)
  if (pickTimer !== null) return
  pickTimer = setTimeout(() => {
    pickTimer = null
    const first = ui.list.firstElementChild as HTMLElement | null
    if (autoPick && first?.dataset.id !== undefined) pick(first.dataset.id)
  }, PICK_LIVE_MS)
}

function pick (id: string): void {
  const entry = entries.get(id)
  if (entry === undefined || entry.undrawable !== null) return
  show(id)
}

const thumbObserver = new IntersectionObserver((seen) => {
  for (const s of seen) {
    const entry = entries.get((s.target as HTMLElement).dataset.id ?? '')
    if (entry === undefined) continue
    entry.visible = s.isIntersecting
    if (entry.visible) thumbs.want(entry)
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
    // Shown instead of the picture when the image is none (1-D, 4-D, 5 channels…).
    const label = document.createElement('span')
    label.className = 'placeholder'
    const name = document.createElement('span')
    name.className = 'name'
    name.textContent = descriptor.id
    const caption = document.createElement('span')
    caption.className = 'caption'
    button.append(img, label, name, caption)
    button.addEventListener('click', () => show(descriptor.id))
    item.append(button)
    entry = { descriptor, item, caption, label, img, undrawable: null, url: null, generation: -1, fetchedAt: 0, visible: false, listed: true }
    entries.set(descriptor.id, entry)
    ui.list.append(item)
    thumbObserver.observe(item)
  }
  // A created event after a delete starts over at a lower generation: the thumbnail is of another image.
  if (entry.descriptor.generation > descriptor.generation) entry.generation = -1
  entry.descriptor = descriptor
  entry.undrawable = whyNotDrawable(descriptor.shape, descriptor.typestr)
  entry.item.classList.toggle('undrawable', entry.undrawable !== null)
  entry.label.textContent = entry.undrawable === null ? '' : entry.undrawable.split(':')[0]
  entry.item.title = entry.undrawable ?? ''
  const size = descriptor.mode !== null ? `${descriptor.mode} ${descriptor.width}×${descriptor.height}` : `${descriptor.typestr} [${descriptor.shape.join('×')}]`
  entry.caption.textContent = `${size} · gen ${descriptor.generation}`
  entry.item.setAttribute('aria-current', String(descriptor.id === selected))
  ui.empty.hidden = entries.size > 0
}

function remove (id: string): void {
  const entry = entries.get(id)
  if (entry === undefined) return
  thumbObserver.unobserve(entry.item)
  entry.item.remove()
  thumbs.forget(entry)
  entries.delete(id)
  ui.empty.hidden = entries.size > 0
}

setInterval(() => {
  thumbs.refresh(entries.values(), performance.now())
  if (sortKey === 'generation') reorder()
}, 250)

// ---- the live view ------------------------------------------------------------------------------------

function show (id: string): void {
  autoPick = false
  if (pickTimer !== null) clearTimeout(pickTimer)
  pickTimer = null
  selected = id
  linkImage(id)
  for (const entry of entries.values()) entry.item.setAttribute('aria-current', String(entry.descriptor.id === id))
  live?.stop()
  live = null
  ui.title.textContent = id
  ui.note.textContent = ''
  ui.info.textContent = ''
  ui.about.textContent = NOTES[id] ?? ''
  ui.about.hidden = NOTES[id] === undefined
  ui.canvas.hidden = false
  ui.placeholder.hidden = true
  // Nothing of the previous image may show under this one's name while its first frame is on its way.
  surface.context?.clearRect(0, 0, ui.canvas.width, ui.canvas.height)
  delete ui.canvas.dataset.generation
  // Started once connected (connect() shows the selected image), so it uses a token that works.
  if (client === null) return
  // A tensor that is no picture: say why instead of an empty canvas (its descriptor is still listed).
  const undrawable = entries.get(id)?.undrawable ?? null
  if (undrawable !== null) {
    ui.canvas.hidden = true
    ui.placeholder.hidden = false
    ui.placeholder.textContent = `Not drawn: ${undrawable}.`
    return
  }
  const view = new LiveView(id, surface, async () => await RemoteClient.connect(wsUrl(), { clientName: 'pixelport-viewer-live', token: token ?? undefined }))
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
