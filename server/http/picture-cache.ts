/**
 * Encoded pictures kept for a while, so the viewer's thumbnails (the same small picture asked for by every
 * open page, about once a second) cost one encode per generation instead of one per request.
 *
 * Keyed by image id, generation, format, encoder settings and derivation. Bounded by entries and bytes,
 * least recently used out first; a picture larger than a quarter of the byte budget is never kept (it would
 * push out everything else). A new generation makes older ones useless: they are dropped as soon as the
 * store reports the commit, and all of an id's entries go when it is deleted or created again (a new image
 * under the same id starts its generations over).
 */
import type { ImageStore } from '../store/image-store.js'
import type { Encoded } from '../formats/encode.js'

export const PICTURE_CACHE_ENTRIES = 256
export const PICTURE_CACHE_BYTES = 64 * 1024 * 1024

interface Entry {
  id: string
  generation: number
  encoded: Encoded
}

export class PictureCache {
  /** Map order is recency: the first key is the least recently used. */
  private readonly entries = new Map<string, Entry>()
  private bytes = 0
  /**
   * Bumped whenever any image is created or deleted. An encode started before a bump may be of an image
   * that no longer exists under its id (a new one may even reach the same generation): it is not kept.
   */
  epoch = 0

  constructor (readonly maxEntries = PICTURE_CACHE_ENTRIES, readonly maxBytes = PICTURE_CACHE_BYTES) {}

  /** Drop entries as the store changes (listeners live as long as the store, like the cache). */
  follow (store: ImageStore): void {
    store.onChange((type, d) => {
      if (type === 'updated') return this.dropOlder(d.id, d.generation)
      // A new or removed id changes what a name like `x.png` resolves to.
      this.epoch++
      this.dropOlder(d.id, Infinity)
    })
  }

  get (key: string): Encoded | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.encoded
  }

  /** Keep `encoded`, the picture of `id` at `generation`, from an encode started at `epoch`. */
  set (key: string, id: string, generation: number, encoded: Encoded, epoch: number): void {
    const size = encoded.bytes.byteLength
    if (size > this.maxBytes / 4 || epoch !== this.epoch) return
    this.delete(key)
    this.entries.set(key, { id, generation, encoded })
    this.bytes += size
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break
      this.delete(oldest)
    }
  }

  /** Entries and bytes held (for tests and metrics). */
  get stats (): { entries: number, bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes }
  }

  private delete (key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    this.bytes -= entry.encoded.bytes.byteLength
  }

  private dropOlder (id: string, generation: number): void {
    for (const [key, entry] of this.entries) if (entry.id === id && entry.generation < generation) this.delete(key)
  }
}
