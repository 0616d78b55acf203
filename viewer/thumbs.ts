/**
 * The list's thumbnails: small pictures the server derives and caches (`GET /images/:id.webp?width=…&
 * height=…&fit=inside`), never full frames. An image that keeps changing gets a fresh thumbnail about once
 * a second while its tile is on screen; at most a few are fetched at once.
 */
import type { ImageDescriptor } from '../client/remote/index.js'
import { imagePath } from '../protocol/urls.js'

/** Thumbnails fetched at once, at most. */
const CONCURRENCY = 3
/** A thumbnail of an image that keeps changing is fetched again after this long. */
export const THUMB_REFRESH_MS = 1000
/** The tile is 96×72 CSS pixels; twice that stays sharp on high-density screens. */
const THUMB_QUERY = 'width=192&height=144&fit=inside&quality=80'

export interface ThumbTile {
  descriptor: ImageDescriptor
  item: HTMLLIElement
  img: HTMLImageElement
  /** Why the image has no picture (see whyNotDrawable), or null. */
  undrawable: string | null
  url: string | null
  /** Generation the thumbnail shows (-1: none yet), and when it was last asked for. */
  generation: number
  fetchedAt: number
  visible: boolean
  /** False once the tile left the list: nothing more is fetched for it. */
  listed: boolean
}

export class Thumbnails {
  private readonly queue: ThumbTile[] = []
  private fetching = 0

  /** `token()` is read per request; `unauthorized()` runs when the server wants (another) token. */
  constructor (private readonly token: () => string | null, private readonly unauthorized: () => void) {}

  /** Fetch `tile`'s thumbnail soon, unless it is current or the image has no picture. */
  want (tile: ThumbTile): void {
    if (tile.undrawable !== null || tile.generation === tile.descriptor.generation) return
    if (!this.queue.includes(tile)) this.queue.push(tile)
    this.pump()
  }

  /** Called every so often: visible tiles of images that changed are fetched again. */
  refresh (tiles: Iterable<ThumbTile>, now: number): void {
    for (const tile of tiles) if (tile.visible && now - tile.fetchedAt >= THUMB_REFRESH_MS) this.want(tile)
  }

  /** Drop what the tile holds (its object URL). */
  forget (tile: ThumbTile): void {
    tile.listed = false
    if (tile.url !== null) URL.revokeObjectURL(tile.url)
    tile.url = null
  }

  private pump (): void {
    while (this.fetching < CONCURRENCY && this.queue.length > 0) {
      const tile = this.queue.shift()!
      if (!tile.listed) continue
      this.fetching++
      this.fetch(tile).catch(() => tile.item.classList.add('no-thumb')).finally(() => {
        this.fetching--
        this.pump()
      })
    }
  }

  /**
   * Fetched rather than put in `img.src` so that it can carry the token, and revalidated (`no-cache`: the
   * server answers 304 while the generation is the same).
   */
  private async fetch (tile: ThumbTile): Promise<void> {
    const generation = tile.descriptor.generation
    tile.fetchedAt = performance.now()
    const token = this.token()
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
    const res = await fetch(`${imagePath(tile.descriptor.id, '.webp')}?${THUMB_QUERY}`, { headers, cache: 'no-cache' })
    if (res.status === 401) return this.unauthorized()
    if (!res.ok) {
      tile.item.classList.add('no-thumb')
      return
    }
    const blob = await res.blob()
    if (!tile.listed) return
    const url = URL.createObjectURL(blob)
    if (tile.url !== null) URL.revokeObjectURL(tile.url)
    tile.url = url
    tile.img.src = url
    tile.generation = Number(res.headers.get('x-pixelport-generation') ?? generation)
    tile.item.classList.remove('no-thumb')
  }
}
