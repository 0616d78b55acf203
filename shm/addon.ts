/**
 * Loads the shared-memory addon (native/, built at install time) and says why when it cannot.
 *
 * The addon is optional: without it the server keeps blocks in in-process SharedArrayBuffers. So this
 * module never throws; `loadShmAddon()` returns either the addon or a one-line reason for the start-up
 * message. The result is cached per thread (each worker thread loads its own context-aware instance).
 */
import { existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** What the addon's functions return from a futex wait, the same words Atomics.wait uses. */
export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out'

/**
 * The addon's exports. Errors from the system carry `code` ('EEXIST', 'ENOENT', 'ENOSPC', ...),
 * `errno`, `syscall` and `path`, like Node's fs errors; bad arguments throw TypeError/RangeError with
 * `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` / `ERR_OUT_OF_RANGE`.
 */
export interface ShmAddon {
  /** Bumped when the exports change shape; a stale build is reported as unavailable. */
  readonly apiVersion: number
  /**
   * Create segment `name` (`/something`, O_EXCL: never an existing one) of `byteLength` zero bytes,
   * every page reserved up front (a full /dev/shm is ENOSPC here, not SIGBUS later), with file `mode`
   * applied regardless of the umask. The buffer unmaps itself when collected.
   */
  create (name: string, byteLength: number, mode: number): SharedArrayBuffer
  /** Map an existing segment read-write; its size is the file's size. ENODATA when it is still empty. */
  open (name: string): SharedArrayBuffer
  /** Remove the name. Existing mappings (in every process) stay valid until they are collected. */
  unlink (name: string): void
  /**
   * Block the calling thread while the int32 at `byteOffset` equals `expected`, until woken by
   * `futexWake` from any process, or `timeoutMs` passes (undefined/Infinity: no limit). Like any futex
   * it may return 'ok' without a change: callers re-check their condition. Does not see
   * `Atomics.notify`, and `Atomics.wait` does not see `futexWake`.
   */
  futexWait (buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs?: number): FutexWaitResult
  /** Wake up to `count` (default all) `futexWait`ers on the int32 at `byteOffset`; returns how many woke. */
  futexWake (buffer: SharedArrayBuffer, byteOffset: number, count?: number): number
  /**
   * `futexWait` without blocking: `callback(result)` runs later on this thread's event loop, woken by the
   * kernel itself (io_uring's futex wait). Returns false, calling nothing, where that is unavailable (Linux
   * before 6.7, io_uring disabled, too many waits pending): wait another way. Absent from older builds.
   */
  futexWaitAsync?: (buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number,
    callback: (result: FutexWaitResult | 'error') => void) => boolean
}

export const SHM_ADDON_API_VERSION = 1

/** Where POSIX shared-memory names live as files on Linux (glibc maps `/name` to `/dev/shm/name`). */
export const SHM_DIR = '/dev/shm'

export type ShmAddonLoad =
  | { readonly addon: ShmAddon, readonly path: string, readonly reason: null }
  | { readonly addon: null, readonly path: string | null, readonly reason: string }

const ADDON_FILE = join('native', 'build', 'Release', 'pixelport_shm.node')

let cached: ShmAddonLoad | undefined

/**
 * The addon, or why it is unavailable. `PIXELPORT_SHM_ADDON` names another build of it to load instead
 * (a path to a `.node` file).
 */
export function loadShmAddon (): ShmAddonLoad {
  cached ??= load()
  return cached
}

function load (): ShmAddonLoad {
  if (process.platform !== 'linux') return unavailable(null, `shared memory needs Linux, this is ${process.platform}`)
  if (!isDirectory(SHM_DIR)) return unavailable(null, `${SHM_DIR} is not mounted`)
  const override = process.env.PIXELPORT_SHM_ADDON
  const path = override !== undefined && override !== '' ? resolve(override) : findBuiltAddon()
  if (path === null) {
    return unavailable(null, 'the native shm addon is not built (install needs node-gyp and a C++ compiler; run `node scripts/build-native.mjs` to see why)')
  }
  let addon: ShmAddon
  try {
    addon = createRequire(import.meta.url)(path) as ShmAddon
  } catch (err) {
    return unavailable(path, `the native shm addon at ${path} does not load: ${firstLine(err)}`)
  }
  if (addon.apiVersion !== SHM_ADDON_API_VERSION) {
    return unavailable(path, `the native shm addon at ${path} is a stale build (api ${String(addon.apiVersion)}, need ${SHM_ADDON_API_VERSION}); rebuild with \`node scripts/build-native.mjs\``)
  }
  return { addon, path, reason: null }
}

/** The package root holds native/; from source it is one level up, from dist/ two. */
function findBuiltAddon (): string | null {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    dir = dirname(dir)
    const candidate = join(dir, ADDON_FILE)
    if (existsSync(candidate)) return candidate
  }
  return null
}

function unavailable (path: string | null, reason: string): ShmAddonLoad {
  return { addon: null, path, reason }
}

function isDirectory (path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function firstLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]
}
