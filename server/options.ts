/**
 * Server options: validation up front with messages that name the option. Defaults and numeric bounds come
 * from the options table (./options-table.ts), which the CLI's flags and help come from too.
 */
import { pxpError } from '../protocol/errors.js'
import { TokenRegistry, type TokenSpec } from './auth/tokens.js'
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from './cluster/options.js'
import type { BlockProvider } from './memory/block-provider.js'
import { DEFAULT_SHM_PREFIX, validatePrefix } from '../shm/names.js'
import { SHM_MODES } from './memory/shm-provider.js'
import { EVICTION_POLICIES, type EvictionPolicy } from './store/eviction.js'
import { defaultCapacity, OPTION_TABLE, optionRow, type OptionRow } from './options-table.js'

export { defaultCapacity }

export interface ServerOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number
  /** Size of shared blocks in bytes. Default 64 MiB. */
  blockSize?: number
  /** Total image memory in bytes. Default: a quarter of physical memory, at most 16 GiB. */
  capacity?: number
  /** Most images and views held at once. Default 16384. */
  maxImages?: number
  /** Largest single dimension. Default 65536. */
  maxDimension?: number
  /** Largest single image in bytes. Default 1 GiB. */
  maxImageBytes?: number
  /** Largest HTTP JSON body in bytes. Default 1 MiB. */
  maxJsonBytes?: number
  /** Memory for snapshots served to remote readers, in bytes. Default 512 MiB. */
  snapshotBytes?: number
  /** Wait for a write lock held elsewhere, in ms. Default 5000. */
  lockTimeoutMs?: number
  /**
   * When capacity or maxImages is reached: `none` (default) refuses with 507; `lru` evicts the least recently
   * used images that no worker, process or remote reader holds until the new image fits (or, when even that
   * would not make room, evicts nothing and refuses with 507).
   */
  evict?: EvictionPolicy
  /** WebSocket: bytes per data chunk. Default 1 MiB. */
  chunkSize?: number
  /** WebSocket: largest incoming message in bytes. Default 16 MiB + 64 KiB. */
  maxMessageBytes?: number
  /** WebSocket: bytes a connection may have queued before the server waits for it to drain. Default 4 MiB. */
  highWaterMark?: number
  /** pino logger options or false. Default false (quiet). */
  logger?: boolean | object
  /** Where block memory comes from. Default: in-process SharedArrayBuffers. */
  provider?: BlockProvider
  /**
   * Put blocks and the image table in POSIX shared memory (/dev/shm) so other processes on the host can map
   * them (`pixelport/attach`, numpy). Where that is unavailable the server starts with in-process memory and
   * says why (`server.shm.reason`). `mode`: file mode of the segments, 0o600 (default), or 0o640 / 0o660 to
   * share with the group deliberately; `prefix`: first part of every segment name (default `pixelport`).
   * Default false.
   */
  shm?: boolean | ShmOptions
  /**
   * Without shared memory: a directory every image is written to on graceful shutdown (raw bytes plus the
   * descriptor, each file written atomically) and loaded from at start (server/store/persist.ts). A crash
   * loses what was not written. Default: none.
   */
  persist?: string
  /**
   * Bearer tokens with scopes and optional id limits. Empty (default): no authentication, which is only
   * allowed on a loopback `host` unless `insecure` is set.
   */
  tokens?: TokenSpec[]
  /** Listen on a non-loopback host without tokens: anyone who reaches the port may read and overwrite everything. Default false. */
  insecure?: boolean
  /** Origins allowed to call the API from other sites' pages (CORS). Default none: CORS off. `['*']` allows any. */
  corsOrigins?: string[]
  /**
   * `Host` header values served besides the loopback names (`localhost`, `127.0.0.1`, `[::1]`, any port):
   * `name` (any port) or `name:port`. With a loopback `host` every other Host is refused with 421
   * PXP_ERR_BAD_HOST (DNS rebinding); on another `host` the check is on only when this list is given.
   * Default none.
   */
  allowedHosts?: string[]
  /** A WebSocket without an Authorization header must send `hello { token }` within this many ms. Default 5000. */
  authTimeoutMs?: number
  /** Event-loop delay above which /ready and every non-health route answer 503 PXP_ERR_OVERLOADED; 0 turns it off. Default 1000. */
  maxEventLoopDelayMs?: number
  /** How often event-loop delay is sampled, in ms. Default 1000 (a window with no sample at all counts as overloaded). */
  pressureSampleMs?: number
  /** WebSocket connections one client address may hold at once. Default 64. */
  maxConnectionsPerClient?: number
  /** WebSocket connections one token may hold at once, from any address (127.0.0.2 is another address). Default 64. */
  maxConnectionsPerToken?: number
  /** WebSocket: subscriptions per connection. Default 64. */
  maxSubscriptions?: number
  /** WebSocket: `get`s one connection may have queued or streaming. Default 32. */
  maxStreams?: number
  /** WebSocket: chunked uploads one connection may have in progress. Default 4. */
  maxUploads?: number
  /** WebSocket: largest event queue a subscription may ask for. Default 4096. */
  maxQueue?: number
  // ---- uploads (server/uploads) ----
  /**
   * Bytes all uploads in progress may hold at once, on every path together (HTTP PUT staging, raw POST
   * reservations, picture files and their pixels, WebSocket chunked puts). An upload that does not fit is
   * refused with 503 PXP_ERR_STAGING_FULL; one larger than the whole budget can never be uploaded.
   * Default: the larger of 256 MiB and `maxImageBytes`, so the largest image the server accepts can always
   * be uploaded (lower `maxImageBytes`, or set this, to bound what stalled uploads can hold).
   */
  stagingBudgetBytes?: number
  /** Abort an upload whose body sends no byte for this many ms (408 PXP_ERR_UPLOAD_TIMEOUT). Default 30000. */
  uploadIdleTimeoutMs?: number
  /** Abort an upload whose body is not complete this many ms after it started. Default 600000 (10 min). */
  uploadDeadlineMs?: number
  /**
   * Join a cluster of nodes coordinated through Redis (catalog, heartbeats, events; pixels stay here).
   * Default: none, a single node. See server/cluster/options.ts.
   */
  cluster?: ClusterOptions
}

export interface ShmOptions {
  mode?: number
  prefix?: string
  /**
   * Adopt the segments of a dead store with the same prefix (its images, ids, generations) instead of
   * removing them as stale; a store that fails the checks is refused, left in place, and the server starts
   * empty (`server.recovery`). Default false.
   */
  recover?: boolean
}

export type ResolvedOptions = Required<Omit<ServerOptions, 'provider' | 'logger' | 'shm' | 'tokens' | 'cluster' | 'persist'>> & Pick<ServerOptions, 'provider' | 'logger'> & {
  /** Directory images are saved to at shutdown and loaded from at start, or null. */
  persist: string | null
  /** Shared memory asked for (it may still be unavailable), or null. */
  shm: Required<ShmOptions> | null
  /** The configured tokens, validated (empty: authentication off). */
  tokens: TokenRegistry
  /** Cluster membership, or null for a single node. */
  cluster: ResolvedClusterOptions | null
}

function positiveInt (name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw pxpError('PXP_ERR_VALIDATION', `option ${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

export function resolveOptions (options: ServerOptions = {}): ResolvedOptions {
  const o = options
  const port = o.port ?? optionRow('port').default as number
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw pxpError('PXP_ERR_VALIDATION', `option port must be an integer from 0 to 65535, got ${JSON.stringify(port)}`)
  }
  const host = o.host ?? optionRow('host').default as string
  if (typeof host !== 'string' || host.length === 0) throw pxpError('PXP_ERR_VALIDATION', 'option host must be a non-empty string')
  if (o.tokens !== undefined && !Array.isArray(o.tokens)) throw pxpError('PXP_ERR_VALIDATION', 'option tokens must be a list of { token, scopes, ids?, name? }')
  const tokens = new TokenRegistry(o.tokens ?? [])
  const insecure = o.insecure ?? optionRow('insecure').default as boolean
  if (!isLoopback(host) && !tokens.enabled && insecure !== true) {
    throw pxpError('PXP_ERR_INSECURE', host)
  }
  const corsOrigins = o.corsOrigins ?? []
  if (!Array.isArray(corsOrigins) || !corsOrigins.every((c) => typeof c === 'string' && (c === '*' || /^https?:\/\/[^/\s]+$/.test(c)))) {
    throw pxpError('PXP_ERR_VALIDATION', `option corsOrigins must be a list of origins like https://app.example.com (no path) or "*", got ${JSON.stringify(corsOrigins)}`)
  }
  const allowedHosts = resolveAllowedHosts(o.allowedHosts)
  return {
    ...resolveNumbers(o),
    host,
    port,
    logger: o.logger ?? optionRow('logger').default as boolean,
    provider: o.provider,
    shm: resolveShm(o.shm, o.provider),
    persist: resolvePersist(o.persist, o.shm),
    tokens,
    insecure,
    corsOrigins,
    allowedHosts,
    evict: evictionPolicy(o.evict),
    cluster: resolveClusterOptions(o.cluster, host),
  }
}

/** The options whose value is a number. */
type NumericOptions = { [K in keyof ServerOptions as Required<ServerOptions>[K] extends number ? K : never]-?: number }

/** Rows of plain numeric options: port has its own message (a range), nested ones their own resolvers. */
const NUMERIC_ROWS = OPTION_TABLE.filter((r) => r.option !== undefined && r.option !== 'port' && !r.option.includes('.') &&
  (typeof r.default === 'number' || typeof r.default === 'function'))

/** Every numeric option: given or defaulted, then checked against the table's bounds (rows in order: a computed default sees the ones before it). */
function resolveNumbers (o: ServerOptions): Omit<NumericOptions, 'port'> {
  const out: Record<string, number> = {}
  for (const row of NUMERIC_ROWS) {
    const name = row.option!
    const given = (o as Record<string, unknown>)[name]
    out[name] = checked(row, name, given ?? defaultOf(row, out))
  }
  return out as unknown as Omit<NumericOptions, 'port'>
}

function defaultOf (row: OptionRow, resolved: Record<string, number>): unknown {
  return typeof row.default === 'function' ? row.default(resolved as { maxImageBytes: number }) : row.default
}

function checked (row: OptionRow, name: string, value: unknown): number {
  const n = positiveInt(name, value, row.min ?? 1)
  // Only timers have an upper bound: setTimeout fires at once for anything above 2^31 - 1 ms.
  if (row.max !== undefined && n > row.max) throw pxpError('PXP_ERR_VALIDATION', `option ${name} must be at most ${row.max} ms, got ${n}`)
  return n
}

function evictionPolicy (value: unknown): EvictionPolicy {
  if (value === undefined) return 'none'
  if (!(EVICTION_POLICIES as readonly unknown[]).includes(value)) {
    throw pxpError('PXP_ERR_VALIDATION', `option evict must be one of ${EVICTION_POLICIES.map((p) => `"${p}"`).join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value as EvictionPolicy
}

/** A host name, IPv4 address or bracketed IPv6 address, optionally with a port: what a Host header holds. */
const HOST_VALUE = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:\d{1,5})?$/

function resolveAllowedHosts (value: unknown): string[] {
  if (value === undefined) return []
  const valid = (h: unknown): boolean => typeof h === 'string' && HOST_VALUE.test(h.toLowerCase()) && Number(/:(\d+)$/.exec(h)?.[1] ?? 0) <= 65535
  if (!Array.isArray(value) || !value.every(valid)) {
    throw pxpError('PXP_ERR_VALIDATION', `option allowedHosts must be a list of host names like pixelport.internal or pixelport.internal:8080 (no scheme, no path), got ${JSON.stringify(value)}`)
  }
  return (value as string[]).map((h) => h.toLowerCase())
}

/** 127.0.0.0/8, ::1 and localhost: only this host can connect. */
export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
}

function resolveShm (shm: unknown, provider: BlockProvider | undefined): Required<ShmOptions> | null {
  if (shm === undefined || shm === false) return null
  if (shm !== true && (typeof shm !== 'object' || shm === null || Array.isArray(shm))) {
    throw pxpError('PXP_ERR_VALIDATION', `option shm must be a boolean or { mode, prefix }, got ${JSON.stringify(shm)}`)
  }
  if (provider !== undefined) throw pxpError('PXP_ERR_VALIDATION', 'options shm and provider cannot be combined: shm chooses the provider')
  const { mode = 0o600, prefix = DEFAULT_SHM_PREFIX, recover = false } = shm === true ? {} : shm as ShmOptions
  if (!(SHM_MODES as readonly unknown[]).includes(mode)) {
    throw pxpError('PXP_ERR_VALIDATION', `option shm.mode must be one of 0o600, 0o640, 0o660, got ${typeof mode === 'number' ? '0o' + mode.toString(8) : JSON.stringify(mode)}`)
  }
  validatePrefix(prefix)
  if (typeof recover !== 'boolean') throw pxpError('PXP_ERR_VALIDATION', `option shm.recover must be a boolean, got ${JSON.stringify(recover)}`)
  return { mode, prefix, recover }
}

function resolvePersist (persist: unknown, shm: unknown): string | null {
  if (persist === undefined) return null
  if (typeof persist !== 'string' || persist === '') throw pxpError('PXP_ERR_VALIDATION', `option persist must be a directory path, got ${JSON.stringify(persist)}`)
  // With shared memory the segments are the persistent copy (shm.recover); two copies would disagree.
  if (shm !== undefined && shm !== false) throw pxpError('PXP_ERR_VALIDATION', 'options persist and shm cannot be combined: with shared memory use shm.recover and close({ keep: true })')
  return persist
}
