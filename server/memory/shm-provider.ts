/**
 * Blocks in POSIX shared memory: each block is a /dev/shm segment mapped as a SharedArrayBuffer, so
 * other processes (Node via the same addon, numpy via np.memmap) can map the same pixels by name.
 *
 * Segments are created once and reused by the arena: creating one reserves every page (fallocate), and
 * the garbage collector is slow to unmap released buffers, so churning segments costs memory and time.
 * Names are unlinked on release and on close; mappings already made stay valid until collected.
 */
import { unlinkSync } from 'node:fs'
import type { FutexWake } from '../../protocol/cross-process.js'
import { PixelportError, pxpError } from '../../protocol/errors.js'
import { type BlockMemory, type BlockProvider, HeapBlockProvider } from './block-provider.js'
import { loadShmAddon, type ShmAddon } from '../../shm/addon.js'
import { findAdoptable, type AdoptedShm, type Refusal, writeMetaFile } from './shm-adopt.js'
import {
  attachSocketPath, claimsSegmentName, cleanStaleSegments, DEFAULT_SHM_PREFIX, metaFileName, newStoreId, removeAttachSocket, removeOwnerMarker,
  replaceOwnerMarker, segmentName, shmPath, type StaleCleanup, tableSegmentName, validatePrefix, writeOwnerMarker,
} from '../../shm/names.js'
import type { StoreMeta } from './shm-table-check.js'

/** File modes a store may use: owner only (default), or shared with the group read-only or read-write. */
export const SHM_MODES = [0o600, 0o640, 0o660] as const

export interface ShmBlockProviderOptions {
  /** First part of every segment name (default `pixelport`); stale clean-up only looks at this prefix. */
  prefix?: string
  /** File mode of the segments: 0o600 (default), or 0o640 / 0o660 to share them with the group deliberately. */
  mode?: number
  /** Remove the segments of dead stores with the same prefix before starting (default true). */
  cleanStale?: boolean
  /**
   * Adopt the segments of a dead store with the same prefix instead of removing them (`--recover`): the
   * store starts with that store's id, table and blocks. A store that fails the checks is refused, left
   * in place, and this one starts empty (`recovery.refused` says why).
   */
  recover?: boolean
}

/** What `recover` found: the store adopted (if any) and the stores refused, with the reason and their files. */
export interface ShmRecovery {
  adopted: AdoptedShm | null
  refused: Refusal[]
}

/** Errors from the system that mean "no room", as opposed to a broken setup. */
const FULL_CODES = new Set(['ENOSPC', 'ENOMEM', 'EFBIG'])

export class ShmBlockProvider implements BlockProvider {
  readonly kind = 'shm'
  readonly prefix: string
  /** Random 128-bit id in every segment name of this store. */
  readonly storeId: string
  readonly mode: number
  /** What the start-up clean-up of dead stores found and did (null when it was turned off). */
  readonly staleCleanup: StaleCleanup | null
  /** What `recover` found (null when it was not asked for). The store takes `adopted` over at start. */
  readonly recovery: ShmRecovery | null
  private readonly addon: ShmAddon
  /** Live segments: name → byte length. */
  private readonly segments = new Map<string, number>()
  private nextBlock = 0
  private closed = false

  /** Throws PXP_ERR_SHM when the addon is unavailable or the store cannot be set up. */
  constructor (options: ShmBlockProviderOptions = {}) {
    const loaded = loadShmAddon()
    if (loaded.addon === null) throw pxpError('PXP_ERR_SHM', loaded.reason)
    this.addon = loaded.addon
    this.prefix = validatePrefix(options.prefix ?? DEFAULT_SHM_PREFIX)
    this.mode = validateMode(options.mode ?? 0o600)
    try {
      this.recovery = options.recover === true ? findAdoptable(this.prefix, this.addon) : null
    } catch (err) {
      throw withCause(pxpError('PXP_ERR_SHM', `cannot look for a store to recover: ${(err as Error).message}`), err)
    }
    const adopted = this.recovery?.adopted ?? null
    this.storeId = adopted?.storeId ?? newStoreId()
    try {
      if (adopted !== null) {
        // Ours from now on: the marker names this process before the clean-up below looks at it.
        replaceOwnerMarker(this.prefix, this.storeId, this.mode)
        for (const m of [adopted.table, ...adopted.blocks.values(), ...adopted.claims]) this.segments.set(m.name!, m.buffer.byteLength)
        this.nextBlock = Math.max(0, ...[...adopted.blocks.keys()].map((i) => i + 1))
        // The dead server's socket file would make listening fail.
        removeAttachSocket(this.prefix, this.storeId)
      }
      // Refused stores stay for inspection; a start without --recover removes them.
      const keep = new Set(this.recovery?.refused.map((r) => r.storeId) ?? [])
      this.staleCleanup = options.cleanStale === false ? null : cleanStaleSegments(this.prefix, keep)
      // The marker comes before the first segment: a segment without one is never taken for stale.
      if (adopted === null) writeOwnerMarker(this.prefix, this.storeId, this.mode)
    } catch (err) {
      throw withCause(pxpError('PXP_ERR_SHM', `cannot set up store ${this.storeId}: ${(err as Error).message}`), err)
    }
    openProviders.add(this)
    ensureExitHook()
  }

  /** Names of the segments this store holds now. */
  get segmentNames (): string[] {
    return [...this.segments.keys()]
  }

  /** The native addon the segments are made with: its futexWait/futexWake work on them across processes. */
  get native (): ShmAddon {
    return this.addon
  }

  readonly futexWake: FutexWake = (buffer, byteOffset, count) => this.addon.futexWake(buffer, byteOffset, count)

  /** The path of the Unix socket other processes attach through (see server/attach/); removed by close(). */
  get socketPath (): string {
    return attachSocketPath(this.prefix, this.storeId)
  }

  /**
   * A new zero-filled segment of `byteLength` bytes. Throws PXP_ERR_SHM_FULL when /dev/shm (or memory)
   * has no room for it, PXP_ERR_SHM for other failures, PXP_ERR_CLOSED after close().
   */
  allocate (byteLength: number): BlockMemory {
    return this.createSegment(segmentName(this.prefix, this.storeId, this.nextBlock++), byteLength)
  }

  /** The store's image table: one fixed-size segment, so other processes map all of it once. */
  allocateTable (byteLength: number): BlockMemory {
    const adopted = this.recovery?.adopted
    // Adopted: the dead store's table, whatever its size (the table was checked against its own capacity).
    if (adopted != null) return adopted.table
    return this.createSegment(tableSegmentName(this.prefix, this.storeId), byteLength)
  }

  /** Replace the meta file (rows of line-based images), atomically. */
  saveMeta (meta: StoreMeta): void {
    if (this.closed) return
    writeMetaFile(this.prefix, this.storeId, meta, this.mode)
  }

  /** The claims segment of attached process `n` (released with release() when it detaches). */
  allocateClaims (n: number, byteLength: number): BlockMemory {
    return this.createSegment(claimsSegmentName(this.prefix, this.storeId, n), byteLength)
  }

  private createSegment (name: string, byteLength: number): BlockMemory {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'shared-memory block provider')
    if (!Number.isSafeInteger(byteLength) || byteLength <= 0) throw new RangeError(`byteLength must be a positive integer, got ${byteLength}`)
    let buffer: SharedArrayBuffer
    try {
      buffer = this.addon.create(name, byteLength, this.mode)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? ''
      const error = FULL_CODES.has(code)
        ? pxpError('PXP_ERR_SHM_FULL', byteLength, (err as Error).message)
        : pxpError('PXP_ERR_SHM', (err as Error).message)
      throw withCause(error, err)
    }
    this.segments.set(name, byteLength)
    return { buffer, name }
  }

  /** Unlink the segment's name. Processes that mapped it keep their mapping until they drop it. */
  release (memory: BlockMemory): void {
    if (memory.name === null || !this.segments.has(memory.name)) {
      throw new RangeError(`segment ${String(memory.name)} does not belong to store ${this.storeId}`)
    }
    this.segments.delete(memory.name)
    unlinkQuietly(this.addon, memory.name)
  }

  /**
   * Unlink every segment, then the owner marker. Idempotent. `keep`: leave the segments and mark the store
   * released, so the next start with `recover` adopts it (and one without removes it as stale).
   */
  close (keep = false): void {
    if (this.closed) return
    this.closed = true
    openProviders.delete(this)
    if (keep) {
      removeAttachSocket(this.prefix, this.storeId)
      replaceOwnerMarker(this.prefix, this.storeId, this.mode, true)
      return
    }
    const failures: string[] = []
    for (const name of [...this.segments.keys(), metaFileName(this.prefix, this.storeId), metaFileName(this.prefix, this.storeId, true)]) {
      try {
        unlinkQuietly(this.addon, name)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    this.segments.clear()
    try {
      // Closing the attach listener removes it; a process exiting without closing it does not.
      removeAttachSocket(this.prefix, this.storeId)
    } catch (err) {
      failures.push((err as Error).message)
    }
    // A failed unlink keeps the marker, so the next start removes what is left once this process is gone.
    if (failures.length > 0) throw pxpError('PXP_ERR_SHM', `could not unlink segments at close: ${failures.join('; ')}`)
    removeOwnerMarker(this.prefix, this.storeId)
  }
}

export interface BlockProviderChoice {
  provider: BlockProvider
  /** Why shared memory was asked for but not used (for the start-up log), else null. */
  warning: string | null
}

/**
 * The shared-memory provider when `shm` is asked for and works here, else the in-process heap provider
 * with a warning that says why. Never throws for an unavailable /dev/shm or addon; invalid options
 * (prefix, mode) still throw PXP_ERR_VALIDATION.
 */
export function createBlockProvider (options: { shm: boolean } & ShmBlockProviderOptions): BlockProviderChoice {
  if (!options.shm) return { provider: new HeapBlockProvider(), warning: null }
  validatePrefix(options.prefix ?? DEFAULT_SHM_PREFIX)
  validateMode(options.mode ?? 0o600)
  const fallback = (why: string): BlockProviderChoice =>
    ({ provider: new HeapBlockProvider(), warning: `shared memory unavailable, using in-process blocks: ${why}` })
  const loaded = loadShmAddon()
  if (loaded.addon === null) return fallback(loaded.reason)
  try {
    return { provider: new ShmBlockProvider(options), warning: null }
  } catch (err) {
    if (!(err instanceof PixelportError) || err.code !== 'PXP_ERR_SHM') throw err
    return fallback(err.message)
  }
}

function validateMode (mode: number): number {
  if (!(SHM_MODES as readonly number[]).includes(mode)) {
    throw pxpError('PXP_ERR_VALIDATION', `shm mode must be one of 0o600, 0o640, 0o660, got ${typeof mode === 'number' ? '0o' + mode.toString(8) : String(mode)}`)
  }
  return mode
}

function unlinkQuietly (addon: ShmAddon, name: string): void {
  try {
    // The meta file is a plain file, not a segment the addon made; unlink works on both alike.
    if (name.includes('-meta')) unlinkSync(shmPath(name))
    else addon.unlink(name)
  } catch (err) {
    // Already gone (e.g. removed by hand) is what we wanted anyway.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

function withCause<E extends Error> (error: E, cause: unknown): E {
  error.cause = cause
  return error
}

// Stores still open when the process exits normally (process.exit, end of the event loop) unlink their
// names then; a kill -9 or crash leaves them for the next start's clean-up. One hook for all stores.
const openProviders = new Set<ShmBlockProvider>()
let exitHookInstalled = false

function ensureExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const provider of [...openProviders]) {
      try {
        provider.close()
      } catch {
        // Exiting anyway; the marker stays and the next start cleans up.
      }
    }
  })
}
