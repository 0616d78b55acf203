/**
 * Finding and opening the segments of a previous store so a new server can adopt them (`--recover`).
 *
 * A store is adoptable when its owner marker proves its owner gone (dead, its pid reused, or released on
 * purpose by `close({ keep: true })`). Of several, the most recently created is taken; the others are left
 * to the stale clean-up. Its table, blocks and claims segments are mapped, and the table is checked
 * (shm-table-check.ts) before anything of it is used. A store that fails is refused with the reason and
 * the files it consists of, and its files are left in place for inspection.
 */
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BlockMemory } from './block-provider.js'
import { SHM_DIR, type ShmAddon } from '../../shm/addon.js'
import { checkTable, TableRefused, type CheckedTable, type StoreMeta } from './shm-table-check.js'
import { metaFileName, ownerMarkerName, ownerState, parseShmFileName, readOwnerMarker, shmPath } from '../../shm/names.js'

/** What a new store takes over from a dead one. */
export interface AdoptedShm {
  storeId: string
  table: BlockMemory
  checked: CheckedTable
  /** Every block segment found, by index. */
  blocks: Map<number, BlockMemory>
  /** Claims segments of processes that were attached to the dead server (to give back what they held). */
  claims: BlockMemory[]
  /** The files adopted, for the log. */
  files: string[]
}

export interface Refusal {
  storeId: string
  reason: string
  /** The files of the refused store, under /dev/shm. */
  files: string[]
}

export interface AdoptSearch {
  adopted: AdoptedShm | null
  refused: Refusal[]
}

/**
 * Look for the segments of a dead store named with `prefix` and map them. Never throws for what it finds
 * on disk: a store that cannot be adopted is returned in `refused`.
 */
export function findAdoptable (prefix: string, addon: ShmAddon): AdoptSearch {
  const stores = new Map<string, string[]>()
  for (const file of readdirSync(SHM_DIR)) {
    const parsed = parseShmFileName(prefix, file)
    if (parsed === null) continue
    let files = stores.get(parsed.storeId)
    if (files === undefined) stores.set(parsed.storeId, files = [])
    files.push(file)
  }
  const candidates: Array<{ storeId: string, files: string[], createdAt: string }> = []
  for (const [storeId, files] of stores) {
    const marker = readOwnerMarker(shmPath(ownerMarkerName(prefix, storeId)))
    if (marker === null || ownerState(marker) !== 'dead') continue
    if (!files.some((f) => f.endsWith('-table'))) continue
    candidates.push({ storeId, files: files.sort(), createdAt: marker.createdAt })
  }
  candidates.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
  const refused: Refusal[] = []
  for (const c of candidates) {
    try {
      return { adopted: open(prefix, c.storeId, c.files, addon), refused }
    } catch (err) {
      refused.push({ storeId: c.storeId, reason: (err as Error).message, files: c.files.map((f) => join(SHM_DIR, f)) })
    }
  }
  return { adopted: null, refused }
}

function open (prefix: string, storeId: string, files: string[], addon: ShmAddon): AdoptedShm {
  const blocks = new Map<number, BlockMemory>()
  const claims: BlockMemory[] = []
  let table: BlockMemory | null = null
  let meta: StoreMeta | null = null
  for (const file of files) {
    const parsed = parseShmFileName(prefix, file)!
    const name = '/' + file
    if (typeof parsed.part === 'number') blocks.set(parsed.part, { buffer: mapSegment(addon, name), name })
    else if (parsed.part === 'table') table = { buffer: mapSegment(addon, name), name }
    else if (typeof parsed.part === 'string' && /^a\d+$/.test(parsed.part)) claims.push({ buffer: mapSegment(addon, name), name })
    else if (parsed.part === 'meta') meta = readMeta(join(SHM_DIR, file))
  }
  if (table === null) throw new TableRefused('no table segment')
  const sizes = new Map([...blocks].map(([i, m]) => [i, m.buffer.byteLength]))
  const bytes = table.buffer.byteLength
  const words = new Int32Array(table.buffer, 0, Math.floor(bytes / 4))
  let checked: CheckedTable
  try {
    checked = checkTable(words, bytes, sizes, meta)
  } catch (err) {
    if (err instanceof TableRefused) throw new TableRefused(`${table.name}: ${err.message}`)
    throw err
  }
  return { storeId, table, checked, blocks, claims, files: files.map((f) => join(SHM_DIR, f)) }
}

function mapSegment (addon: ShmAddon, name: string): SharedArrayBuffer {
  try {
    return addon.open(name)
  } catch (err) {
    throw new TableRefused(`cannot map ${name}: ${(err as Error).message}`)
  }
}

function readMeta (path: string): StoreMeta {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new TableRefused(`unreadable meta file ${path}: ${(err as Error).message}`)
  }
  const m = value as StoreMeta
  if (typeof m !== 'object' || m === null || m.version !== 1 || typeof m.lines !== 'object' || m.lines === null) {
    throw new TableRefused(`meta file ${path} is not a version 1 meta file`)
  }
  return m
}

/**
 * Replace the store's meta file atomically (a temporary file, then rename), so a crash leaves either the old
 * or the new one, never half of one.
 */
export function writeMetaFile (prefix: string, storeId: string, meta: StoreMeta, mode: number): void {
  const path = shmPath(metaFileName(prefix, storeId))
  const temp = shmPath(metaFileName(prefix, storeId, true))
  writeFileSync(temp, JSON.stringify(meta), { mode })
  renameSync(temp, path)
}
