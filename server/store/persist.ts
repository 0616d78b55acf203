/**
 * `--persist DIR`: without shared memory, the images outlive a graceful restart as files.
 *
 * On graceful shutdown every image is written to DIR: `<hex id>.bin` (one consistent generation, C order)
 * and `<hex id>.json` (what it takes to create it again, its generation, its view relation). Each file is
 * written to a temporary name and renamed, so a file is either the old one or the new one, never half; the
 * JSON goes last, so a .json always names a complete .bin. At start the files are loaded back. A crash
 * (kill -9, OOM) writes nothing: what changed since the last graceful shutdown is lost.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { SLOT, SLOT_FLAG, slotBase } from '../../protocol/layout.js'
import type { CreateRequest } from '../../protocol/spec.js'
import type { ImageStore } from './image-store.js'

interface SavedImage {
  version: 1
  id: string
  request: CreateRequest
  generation: number
  byteLength: number
  /** For views: the image shown and the rectangle. */
  view: { parent: string, x: number, y: number, width: number, height: number } | null
}

const fileOf = (id: string): string => Buffer.from(id, 'utf8').toString('hex')

/** Write every image to `dir`; files of images that no longer exist are removed. Returns the count saved. */
export async function saveImages (store: ImageStore, dir: string): Promise<number> {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const wanted = new Set<string>()
  let saved = 0
  const all = store.list()
  for (const d of all) {
    // Replicas of another cluster node's images are that node's to keep.
    if (d.owner !== undefined) continue
    const readonly = (store.table.word(store.slotOf(d.id), SLOT.FLAGS) & SLOT_FLAG.READONLY) !== 0
    const name = fileOf(d.id)
    let generation = d.generation
    if (d.view === null) {
      const copy = await store.read(d.id)
      generation = copy.generation
      writeAtomically(join(dir, name + '.bin'), copy.bytes.subarray(0, d.byteLength))
      wanted.add(name + '.bin')
    }
    const record: SavedImage = { version: 1, id: d.id, request: requestOf(d, readonly), generation, byteLength: d.byteLength, view: d.view }
    writeAtomically(join(dir, name + '.json'), JSON.stringify(record) + '\n')
    wanted.add(name + '.json')
    saved++
  }
  for (const file of readdirSync(dir)) {
    if (/^[0-9a-f]+\.(bin|json)$/.test(file) && !wanted.has(file)) unlinkSync(join(dir, file))
  }
  return saved
}

/**
 * Load what saveImages wrote. Images that cannot be loaded (a missing or short .bin, an id already taken)
 * are skipped and reported, never half-created. Returns the ids loaded and the problems.
 */
export function loadImages (store: ImageStore, dir: string): { loaded: string[], skipped: string[] } {
  const loaded: string[] = []
  const skipped: string[] = []
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => /^[0-9a-f]+\.json$/.test(f))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { loaded, skipped }
    throw err
  }
  const saved: SavedImage[] = []
  for (const file of files) {
    try {
      const s = JSON.parse(readFileSync(join(dir, file), 'utf8')) as SavedImage
      if (s.version !== 1 || typeof s.id !== 'string') throw new Error('not a version 1 image file')
      saved.push(s)
    } catch (err) {
      skipped.push(`${file}: ${(err as Error).message}`)
    }
  }
  // Roots before views: a view needs its image.
  saved.sort((a, b) => Number(a.view !== null) - Number(b.view !== null))
  for (const s of saved) {
    try {
      if (s.view !== null) {
        store.createView(s.view.parent, { ...s.view, id: s.id, readonly: s.request.readonly })
      } else {
        const bytes = readFileSync(join(dir, fileOf(s.id) + '.bin'))
        if (bytes.byteLength !== s.byteLength) throw new Error(`${bytes.byteLength} bytes, expected ${s.byteLength}`)
        store.create(s.request, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
        // Generations go on from where they were, so a client comparing them sees no step back.
        Atomics.store(store.table.words, slotBase(store.slotOf(s.id)) + SLOT.GENERATION, s.generation)
      }
      loaded.push(s.id)
    } catch (err) {
      skipped.push(`${s.id}: ${(err as Error).message}`)
    }
  }
  return { loaded, skipped }
}

function requestOf (d: ImageDescriptor, readonly: boolean): CreateRequest {
  const shape = d.mode !== null ? { width: d.width, height: d.height, mode: d.mode } : { shape: [...d.shape], typestr: d.typestr }
  const frames = d.location.kind === 'block' ? d.location.frames : 1
  return { id: d.id, ...shape, layout: d.layout, ...(frames > 1 ? { frames } : {}), ...(readonly ? { readonly: true } : {}) }
}

function writeAtomically (path: string, data: Uint8Array | string): void {
  writeFileSync(path + '.tmp', data, { mode: 0o600 })
  renameSync(path + '.tmp', path)
}
