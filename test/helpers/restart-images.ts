/**
 * A store full of every kind of image, and a fingerprint of it: what the restart tests compare before a
 * crash (or a kept shutdown) and after the next start adopted the segments.
 */
import { createHash } from 'node:crypto'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { MODES } from '../../protocol/modes.js'
import type { CreateRequest } from '../../protocol/spec.js'
import type { ImageStore } from '../../server/store/image-store.js'

/** What must survive a restart of one image. */
export interface Fingerprint {
  id: string
  mode: string | null
  shape: number[]
  typestr: string
  layout: string
  readonly: boolean
  view: ImageDescriptor['view']
  frames: number
  generation: number
  sha256: string
}

/** A mode name as an id segment ('I;16' → 'I_16'). */
const slug = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_')

const RAW: Array<[string, number[]]> = [['<f2', [2, 3, 2, 2, 3, 2, 2, 3]], ['|u1', [2, 2, 2, 2, 3]], ['|u1', [3, 4, 5, 2]], ['<f8', [7, 9]], ['>i4', [6]], ['<u2', [5, 3, 2]], ['|i1', [9, 4]], ['<f4', [3, 3, 3]]]

/** Deterministic bytes for image `n` (0/1 for boolean images, so every value is a valid one). */
export function patternBytes (n: number, length: number, bool = false): Uint8Array {
  const out = new Uint8Array(length)
  let x = (n + 1) * 2654435761 >>> 0
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out[i] = bool ? x & 1 : x & 0xff
  }
  return out
}

/**
 * `count` images: every mode in block and line layout, frame-buffered ones, raw shapes of several dtypes,
 * read-only ones, then views (of roots and of views) up to `count`; some written a few times so
 * generations differ. Returns the ids, roots first.
 */
export async function populate (store: ImageStore, count = 100): Promise<string[]> {
  const requests: CreateRequest[] = []
  MODES.forEach((m, i) => {
    requests.push({ id: `block/${slug(m.name)}`, width: 8 + i % 7, height: 5 + i % 5, mode: m.name })
    requests.push({ id: `lines/${slug(m.name)}`, width: 6 + i % 5, height: 4 + i % 6, mode: m.name, layout: 'lines' })
  })
  for (const [i, mode] of ['L', 'RGB', 'F', 'I;16'].entries()) requests.push({ id: `frames/${slug(mode)}`, width: 12, height: 9, mode, frames: 2 + i % 3 })
  for (const [typestr, shape] of RAW) requests.push({ id: `raw/${slug(typestr)}/${shape.join('x')}`, typestr, shape })
  requests.push({ id: 'readonly/L', width: 10, height: 10, mode: 'L', readonly: true })
  requests.push({ id: 'readonly/lines', width: 7, height: 3, mode: 'RGBA', layout: 'lines', readonly: true })
  const ids: string[] = []
  for (const [n, r] of requests.entries()) {
    if (ids.length >= count) break
    const bool = r.mode === '1'
    if (r.readonly === true) {
      const spec = store.create({ ...r, id: 'probe' })
      store.delete('probe')
      ids.push(store.create(r, patternBytes(n, spec.byteLength, bool)).id)
      continue
    }
    const d = store.create(r)
    await store.write(d.id, patternBytes(n, d.byteLength, bool))
    for (let k = 0; k < n % 4; k++) await store.write(d.id, patternBytes(n + 1000 * (k + 1), d.byteLength, bool))
    ids.push(d.id)
  }
  const bases = ids.filter((id) => !id.startsWith('lines/') && !id.startsWith('readonly/lines') && store.describe(id).shape.length >= 2)
  for (let n = 0; ids.length < count; n++) {
    const base = bases[n % bases.length]
    const d = store.describe(base)
    const x = n % Math.max(1, d.width - 2)
    const y = (n >> 1) % Math.max(1, d.height - 2)
    const view = store.createView(base, { id: `view/${n}`, x, y, width: Math.min(2 + n % 3, d.width - x), height: Math.min(2 + n % 2, d.height - y), readonly: n % 5 === 0 })
    ids.push(view.id)
    if (n % 7 === 3 && d.width - x >= 2) {
      ids.push(store.createView(view.id, { id: `view/${n}/inner`, x: 1, y: 0, width: 1, height: 1 }).id)
    }
  }
  return ids
}

export function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** A fingerprint of every image, from consistent reads. */
export async function fingerprints (store: ImageStore): Promise<Fingerprint[]> {
  const out: Fingerprint[] = []
  for (const d of store.list()) {
    const copy = await store.read(d.id)
    out.push(fingerprintOf(d, copy.generation, copy.bytes))
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1))
}

export function fingerprintOf (d: ImageDescriptor, generation: number, bytes: Uint8Array): Fingerprint {
  return {
    id: d.id,
    mode: d.mode,
    shape: d.shape,
    typestr: d.typestr,
    layout: d.layout,
    readonly: d.readonly,
    view: d.view,
    frames: d.location.kind === 'block' ? d.location.frames : 1,
    generation,
    sha256: sha256(bytes.subarray(0, d.byteLength)),
  }
}
