/**
 * Names of shared-memory segments, the owner marker of a store, and the clean-up of dead stores' segments.
 *
 * A store (one ShmBlockProvider) names its segments `/<prefix>-<storeId>-<n>` (blocks), `…-table` (the image
 * table) and `…-a<n>` (claims of attached process n), with a random 128-bit store id, so no other local user
 * can guess a name and open or pre-create it. Its attach socket is the Unix socket file `/dev/shm/…-attach`. Before its first segment it
 * writes an owner marker `/<prefix>-<storeId>-owner` (JSON: pid, process start time, pid namespace). A
 * process that dies without closing its store (kill -9, crash) leaves both behind; the next store to
 * start with the same prefix removes them once the marker shows the owner is gone.
 *
 * Safety: a segment is only removed when its store's marker proves the owner dead. A store with a live
 * owner, no marker, an unreadable marker, or an owner in another pid namespace (a container sharing
 * /dev/shm) is left alone: removing a live store's names would not break its mappings, but would break
 * every later attach by name.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pxpError } from '../protocol/errors.js'
import { SHM_DIR } from './addon.js'

export const DEFAULT_SHM_PREFIX = 'pixelport'
// 48 at most: the attach socket's path (/dev/shm/<prefix>-<store id>-attach) must fit a Unix socket address.
const PREFIX_PATTERN = /^[A-Za-z0-9_]{1,48}$/
const STORE_ID_PATTERN = /^[0-9a-f]{32}$/
const OWNER_PART = 'owner'
const TABLE_PART = 'table'
const ATTACH_PART = 'attach'
// The sidecar of what the table has no room for (rows of line-based images), and its temporary file.
const META_PART = 'meta'
const META_TEMP_PART = 'metatmp'

/** Throws PXP_ERR_VALIDATION unless `prefix` is 1-48 of A-Z a-z 0-9 _ (a hyphen would make names ambiguous). */
export function validatePrefix (prefix: string): string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw pxpError('PXP_ERR_VALIDATION', `shm prefix must be 1-48 characters of A-Z a-z 0-9 _, got ${JSON.stringify(prefix)}`)
  }
  return prefix
}

/** A fresh random store id: 128 bits as 32 lower-case hex digits. */
export function newStoreId (): string {
  return randomBytes(16).toString('hex')
}

/** The POSIX name of block `n` of a store, e.g. `/pixelport-3f…9a-0`. */
export function segmentName (prefix: string, storeId: string, n: number): string {
  return `/${prefix}-${storeId}-${n}`
}

/** The POSIX name of a store's image table. */
export function tableSegmentName (prefix: string, storeId: string): string {
  return `/${prefix}-${storeId}-${TABLE_PART}`
}

/** The POSIX name of the claims segment of attached process `n`. */
export function claimsSegmentName (prefix: string, storeId: string, n: number): string {
  return `/${prefix}-${storeId}-a${n}`
}

/**
 * The path of the store's attach socket: a Unix socket file next to the segments, with the store's file mode
 * (connecting needs write permission on it), removed at close like the segments and, after a crash, by the
 * next start's clean-up. Not an abstract socket: those have no permissions, and Node pads their names to the
 * full address length, which clients in other languages would have to imitate.
 */
export function attachSocketPath (prefix: string, storeId: string): string {
  return shmPath(`/${prefix}-${storeId}-${ATTACH_PART}`)
}

/** The POSIX name of a store's meta file (or of the temporary file it is written through). */
export function metaFileName (prefix: string, storeId: string, temp = false): string {
  return `/${prefix}-${storeId}-${temp ? META_TEMP_PART : META_PART}`
}

/** The POSIX name of a store's owner marker. */
export function ownerMarkerName (prefix: string, storeId: string): string {
  return `/${prefix}-${storeId}-${OWNER_PART}`
}

/** The file behind a POSIX shm name (Linux: `/name` is `/dev/shm/name`). */
export function shmPath (name: string): string {
  return join(SHM_DIR, name.slice(1))
}

export interface ParsedShmName {
  storeId: string
  /** Block number, 'owner' for the marker, 'table' for the image table, `a<n>` for claims of attachment n, 'attach' for the socket. */
  part: number | 'owner' | 'table' | 'attach' | 'meta' | 'metatmp' | `a${number}`
}

/** Parse a file name in /dev/shm (no leading slash) as one of `prefix`'s, or null when it is not. */
export function parseShmFileName (prefix: string, fileName: string): ParsedShmName | null {
  if (!fileName.startsWith(prefix + '-')) return null
  const rest = fileName.slice(prefix.length + 1).split('-')
  if (rest.length !== 2 || !STORE_ID_PATTERN.test(rest[0])) return null
  if (rest[1] === OWNER_PART) return { storeId: rest[0], part: OWNER_PART }
  if (rest[1] === TABLE_PART) return { storeId: rest[0], part: TABLE_PART }
  if (rest[1] === ATTACH_PART) return { storeId: rest[0], part: ATTACH_PART }
  if (rest[1] === META_PART) return { storeId: rest[0], part: META_PART }
  if (rest[1] === META_TEMP_PART) return { storeId: rest[0], part: META_TEMP_PART }
  if (/^a(0|[1-9][0-9]{0,9})$/.test(rest[1])) return { storeId: rest[0], part: rest[1] as `a${number}` }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(rest[1])) return null
  return { storeId: rest[0], part: Number(rest[1]) }
}

/** What the owner marker records: enough to tell a live owner from a dead one whose pid was reused. */
export interface OwnerMarker {
  version: 1
  pid: number
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null when unreadable. */
  startTime: string | null
  /** The pid namespace the pid belongs to (`pid:[…]`), or null when unreadable. */
  pidNamespace: string | null
  createdAt: string
  /** Set by a graceful shutdown that kept the segments (`--keep`): the owner gave the store up for adoption. */
  released?: true
}

/** The marker this process would write. */
export function currentOwner (): OwnerMarker {
  return {
    version: 1,
    pid: process.pid,
    startTime: processStartTime(process.pid),
    pidNamespace: pidNamespace(),
    createdAt: new Date().toISOString(),
  }
}

/** Write the owner marker of a new store. 'wx': a marker that already exists is never overwritten. */
export function writeOwnerMarker (prefix: string, storeId: string, mode: number): void {
  writeFileSync(shmPath(ownerMarkerName(prefix, storeId)), JSON.stringify(currentOwner()) + '\n', { flag: 'wx', mode })
}

/**
 * Take over a dead store's marker (adoption), or give ours up (`released`: a shutdown that keeps the segments
 * for the next start). Written through a temporary file and a rename, so the marker is never half-written.
 */
export function replaceOwnerMarker (prefix: string, storeId: string, mode: number, released = false): void {
  const path = shmPath(ownerMarkerName(prefix, storeId))
  const marker: OwnerMarker = { ...currentOwner(), ...(released ? { released: true } : {}) }
  writeFileSync(path + '.new', JSON.stringify(marker) + '\n', { mode })
  renameSync(path + '.new', path)
}

/** Remove a store's owner marker (last, after its segments). Missing is fine. */
export function removeOwnerMarker (prefix: string, storeId: string): void {
  unlinkIfPresent(shmPath(ownerMarkerName(prefix, storeId)))
}

/** Remove a store's attach socket file if it is still there (its server normally removes it when it closes). */
export function removeAttachSocket (prefix: string, storeId: string): void {
  unlinkIfPresent(attachSocketPath(prefix, storeId))
}

/** Read and check a marker file; null when it is missing, unreadable or not a marker. */
export function readOwnerMarker (path: string): OwnerMarker | null {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const m = value as Partial<OwnerMarker>
  if (m.version !== 1 || !Number.isSafeInteger(m.pid) || (m.pid as number) <= 0) return null
  if (m.startTime !== null && typeof m.startTime !== 'string') return null
  if (m.pidNamespace !== null && typeof m.pidNamespace !== 'string') return null
  return m as OwnerMarker
}

export type OwnerState = 'alive' | 'dead' | 'unknown'

/**
 * Is the process that wrote `marker` still running? 'unknown' when this process cannot tell (another pid
 * namespace). A live pid whose start time differs from the marker's is a reused pid: the owner is dead.
 */
export function ownerState (marker: OwnerMarker): OwnerState {
  if (marker.released === true) return 'dead'
  const ours = pidNamespace()
  if (marker.pidNamespace !== null && ours !== null && marker.pidNamespace !== ours) return 'unknown'
  try {
    process.kill(marker.pid, 0)
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'dead'
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'unknown'
  }
  if (marker.startTime !== null) {
    const now = processStartTime(marker.pid)
    if (now !== null && now !== marker.startTime) return 'dead'
  }
  return 'alive'
}

export interface StaleCleanup {
  /** Store ids whose owner was dead and whose files were removed. */
  removed: string[]
  /** Number of files removed (segments and markers). */
  removedFiles: number
  /** Store ids left alone because their owner is alive. */
  live: string[]
  /** Store ids left alone because the owner could not be determined (no or unreadable marker, other pid namespace). */
  unknown: string[]
  /** Files that should have been removed but could not be, with the reason. */
  failures: string[]
}

/**
 * Remove the segments and markers of dead stores named with `prefix`. Segments go first and the marker
 * last, so an interrupted clean-up is finished by the next one. Two processes cleaning at once is fine:
 * a name already gone is not an error.
 */
export function cleanStaleSegments (prefix: string, except: ReadonlySet<string> = new Set()): StaleCleanup {
  validatePrefix(prefix)
  const report: StaleCleanup = { removed: [], removedFiles: 0, live: [], unknown: [], failures: [] }
  const stores = new Map<string, { marker: boolean, files: string[] }>()
  for (const file of readdirSync(SHM_DIR)) {
    const parsed = parseShmFileName(prefix, file)
    if (parsed === null) continue
    let store = stores.get(parsed.storeId)
    if (store === undefined) stores.set(parsed.storeId, store = { marker: false, files: [] })
    if (parsed.part === OWNER_PART) store.marker = true
    else store.files.push(file)
  }
  for (const [storeId, store] of stores) {
    if (except.has(storeId)) continue
    const marker = store.marker ? readOwnerMarker(shmPath(ownerMarkerName(prefix, storeId))) : null
    const state = marker === null ? 'unknown' : ownerState(marker)
    if (state === 'alive') { report.live.push(storeId); continue }
    if (state === 'unknown') { report.unknown.push(storeId); continue }
    let complete = true
    for (const file of [...store.files, ownerMarkerName(prefix, storeId).slice(1)]) {
      // Keep the marker if a segment could not be removed, so a later start tries again.
      if (!complete && file.endsWith('-' + OWNER_PART)) break
      try {
        if (unlinkIfPresent(join(SHM_DIR, file))) report.removedFiles++
      } catch (err) {
        complete = false
        report.failures.push(`${file}: ${(err as Error).message}`)
      }
    }
    if (complete) report.removed.push(storeId)
  }
  return report
}

/** Unlink a file; false when it was already gone. */
function unlinkIfPresent (path: string): boolean {
  try {
    unlinkSync(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

function processStartTime (pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19] ?? null
  } catch {
    return null
  }
}

function pidNamespace (): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return null
  }
}
