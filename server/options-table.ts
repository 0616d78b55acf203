/**
 * Every server option declared once: its `createServer` name, its `pixelport serve` flag and environment
 * variable, its default, its bounds or parser, and its help text. `resolveOptions` (./options.ts) takes the
 * defaults and bounds from here, the ImageStore its defaults, and the CLI (cli/serve.ts) builds its
 * `parseArgs` config and `--help` from the same rows, so a flag, its default and its documentation cannot
 * drift apart. Imports nothing of ours but protocol/: the store imports this file.
 */
import os from 'node:os'
import { DEFAULT_SPEC_LIMITS } from '../protocol/spec.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** The largest delay setTimeout honours (about 24.8 days): anything above fires at once. */
export const MAX_TIMER_MS = 0x7fffffff

/** Text of a flag or environment variable → its value; throws an Error naming the flag. */
export type Parser = (text: string, flag: string) => number

export interface OptionRow {
  /** The `createServer` option this row sets (dotted for a nested one: `shm.mode`); none for a CLI-only row. */
  option?: string
  /** The `pixelport serve` flag, without the dashes; none for a `createServer`-only option. */
  flag?: string
  /** The flag's value as `--help` names it (`SIZE`, `N`); none for a switch. */
  arg?: string
  /** The flag may be given several times. */
  multiple?: boolean
  /** The environment variable read when the flag is absent (with several values: `envSplit` between them). */
  env?: string
  envSplit?: string
  /** How `--help` shows the environment variable, when more than its name says (`PIXELPORT_SHM=1`). */
  envHelp?: string
  /** The default: a value, or a function of the other options (resolved ones, for `stagingBudgetBytes`). */
  default?: number | string | boolean | ((options: { maxImageBytes: number }) => number)
  /** Numeric options: the smallest value accepted (default 1) and, for timers, the largest. */
  min?: number
  max?: number
  /** How the CLI reads the flag's text (numeric options). */
  parse?: Parser
  /** `--help` text; `\n` continues it on the next line. */
  help: string
}

/** Sizes such as 512M, 4G, 65536. */
export function parseSize (text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?$/.exec(text.trim())
  if (m === null) throw new Error(`--${flag}: expected a size like 512M or 4G, got ${JSON.stringify(text)}`)
  const unit = (m[2] ?? '').toUpperCase()[0] ?? ''
  const factor = ({ '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 } as Record<string, number>)[unit]
  return Math.floor(Number(m[1]) * factor)
}

/** Whole numbers: counts and milliseconds. */
export function parseCount (text: string, flag: string): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < 0) throw new Error(`--${flag}: expected a whole number, got ${JSON.stringify(text)}`)
  return n
}

/** File modes as `chmod` spells them: 600, 0640, 0o660. */
export function parseMode (text: string, flag: string): number {
  const m = /^(?:0o?)?([0-7]{3})$/.exec(text.trim())
  if (m === null) throw new Error(`--${flag}: expected 600, 640 or 660, got ${JSON.stringify(text)}`)
  return parseInt(m[1], 8)
}

/** Default total image memory: a quarter of physical memory, at most 16 GiB. */
export function defaultCapacity (totalMemory = os.totalmem()): number {
  return Math.min(16 * GiB, Math.floor(totalMemory / 4))
}

/** Every option, in the order `pixelport serve --help` lists them. */
export const OPTION_TABLE: readonly OptionRow[] = [
  { option: 'host', flag: 'host', arg: 'HOST', env: 'HOST', default: '127.0.0.1', help: 'interface to listen on (default 127.0.0.1)' },
  { option: 'port', flag: 'port', arg: 'N', env: 'PORT', default: 8080, min: 0, max: 65535, parse: parseCount, help: 'port, 0 for any free one (default 8080)' },
  { option: 'capacity', flag: 'capacity', arg: 'SIZE', default: () => defaultCapacity(), min: 64, parse: parseSize, help: 'total image memory, e.g. 512M, 4G (default: 1/4 of RAM, at most 16G)' },
  { option: 'blockSize', flag: 'block-size', arg: 'SIZE', default: 64 * MiB, min: 64, parse: parseSize, help: 'shared block size (default 64M)' },
  { option: 'maxImages', flag: 'max-images', arg: 'N', default: 16384, parse: parseCount, help: 'most images and views at once (default 16384)' },
  { option: 'maxImageBytes', flag: 'max-image-bytes', arg: 'SIZE', default: DEFAULT_SPEC_LIMITS.maxImageBytes, parse: parseSize, help: 'largest single image (default 1G)' },
  { option: 'snapshotBytes', flag: 'snapshot-bytes', arg: 'SIZE', default: 512 * MiB, min: 1024, parse: parseSize, help: 'memory for copies served to remote readers (default 512M)' },
  {
    option: 'evict', flag: 'evict', arg: 'POLICY', env: 'PIXELPORT_EVICT', default: 'none',
    help: 'when capacity or --max-images is reached: none (default) refuses with 507;\nlru evicts the least recently used images no one holds open',
  },
  {
    option: 'shm', flag: 'shm', env: 'PIXELPORT_SHM', envHelp: 'PIXELPORT_SHM=1', default: false,
    help: 'blocks and image table in POSIX shared memory (/dev/shm), so other processes\non this host map them (pixelport/attach, numpy); falls back to in-process\nmemory with a warning where unavailable',
  },
  { option: 'shm.mode', flag: 'shm-mode', arg: 'MODE', default: 0o600, parse: parseMode, help: 'file mode of the segments: 600 (default), 640 or 660 to share with the group' },
  { option: 'shm.prefix', flag: 'shm-prefix', arg: 'NAME', default: 'pixelport', help: 'first part of every segment name (default pixelport)' },
  {
    option: 'shm.recover', flag: 'recover', default: false,
    help: 'adopt the segments of a dead store with this prefix (crash, kill -9, --keep)\ninstead of removing them: every image comes back with its id and generation',
  },
  { flag: 'keep', help: 'on SIGTERM/SIGINT leave the segments in place for the next --recover start' },
  { option: 'persist', flag: 'persist', arg: 'DIR', help: 'without --shm: save every image to DIR on graceful shutdown, load at start' },
  {
    option: 'tokens', flag: 'token', arg: 'TOKEN:SCOPES[:IDS]', multiple: true, env: 'PIXELPORT_TOKENS', envSplit: ';', envHelp: 'PIXELPORT_TOKENS, \';\'-separated',
    help: 'accept this bearer token (repeatable); SCOPES from read,write,admin; IDS limits\nit to ids, e.g. cam1/*,cam2/main',
  },
  {
    option: 'tokens', flag: 'token-file', arg: 'FILE', env: 'PIXELPORT_TOKEN_FILE',
    help: 'tokens from FILE: lines of TOKEN:SCOPES[:IDS], or JSON\n[{ token, scopes, ids?, name? }]',
  },
  { option: 'insecure', flag: 'insecure', default: false, help: 'allow a non-loopback --host without tokens (trusted networks only)' },
  { option: 'corsOrigins', flag: 'cors', arg: 'ORIGIN', multiple: true, env: 'PIXELPORT_CORS', envSplit: ',', help: 'let pages from ORIGIN call the API (repeatable; default: CORS off)' },
  {
    option: 'allowedHosts', flag: 'allowed-host', arg: 'NAME', multiple: true, env: 'PIXELPORT_ALLOWED_HOSTS', envSplit: ',', envHelp: 'PIXELPORT_ALLOWED_HOSTS, \',\'-separated',
    help: 'also answer requests for Host NAME or NAME:PORT (repeatable); on a loopback\n--host every other name but localhost/127.0.0.1/[::1] gets 421 (DNS\nrebinding)',
  },
  { option: 'maxConnectionsPerClient', flag: 'max-connections-per-client', arg: 'N', default: 64, parse: parseCount, help: 'WebSocket connections one address may hold (default 64)' },
  { option: 'maxConnectionsPerToken', flag: 'max-connections-per-token', arg: 'N', default: 64, parse: parseCount, help: 'WebSocket connections one token may hold, from any address (default 64)' },
  { option: 'maxEventLoopDelayMs', flag: 'max-event-loop-delay', arg: 'MS', default: 1000, min: 0, parse: parseCount, help: 'above this, /ready and the API answer 503 PXP_ERR_OVERLOADED (default 1000, 0 off)' },
  {
    option: 'stagingBudgetBytes', flag: 'staging-budget', arg: 'SIZE', env: 'PIXELPORT_STAGING_BUDGET', default: (o) => Math.max(256 * MiB, o.maxImageBytes), parse: parseSize,
    help: 'bytes all uploads in progress may hold together (default: the larger of 256M and\n--max-image-bytes); beyond it an upload is refused with 503 PXP_ERR_STAGING_FULL',
  },
  { option: 'uploadIdleTimeoutMs', flag: 'upload-idle-timeout', arg: 'MS', env: 'PIXELPORT_UPLOAD_IDLE_TIMEOUT', default: 30_000, max: MAX_TIMER_MS, parse: parseCount, help: 'abort an upload whose body sends nothing for MS (default 30000)' },
  { option: 'uploadDeadlineMs', flag: 'upload-deadline', arg: 'MS', env: 'PIXELPORT_UPLOAD_DEADLINE', default: 600_000, max: MAX_TIMER_MS, parse: parseCount, help: 'abort an upload whose body is not complete after MS (default 600000)' },
  {
    option: 'cluster.redis', flag: 'cluster', arg: 'URL', env: 'PIXELPORT_CLUSTER',
    help: 'join the cluster coordinated by the Redis at URL (redis://HOST:PORT): catalog,\nheartbeats and events in Redis; pixels stay on their node',
  },
  {
    option: 'cluster.advertise', flag: 'advertise', arg: 'URL', env: 'PIXELPORT_ADVERTISE',
    help: 'this node\'s base URL as the other nodes reach it, e.g. http://10.0.0.5:8080\n(default: the listening URL; required with --host 0.0.0.0)',
  },
  { option: 'cluster.nodeId', flag: 'node-id', arg: 'NAME', env: 'PIXELPORT_NODE_ID', help: 'node name in the cluster (default HOSTNAME-PORT)' },
  { option: 'cluster.token', flag: 'cluster-token', arg: 'TOKEN', env: 'PIXELPORT_CLUSTER_TOKEN', help: 'bearer token this node sends to the others when it forwards a request' },
  { flag: 'worker', arg: 'FILE', multiple: true, help: 'run FILE in worker threads connected to the store (repeatable)' },
  { flag: 'threads', arg: 'N', default: 1, parse: parseCount, help: 'worker threads per --worker module (default 1)' },
  { flag: 'worker-restarts', arg: 'N', default: 5, min: 0, parse: parseCount, help: 'restart a crashed --worker thread up to N times, backing off 1 s, 2 s, 4 s …\n(default 5; 0: never)' },
  { flag: 'demo', help: 'add demo images and run the animated demo producer' },
  { option: 'logger', flag: 'log', default: false, help: 'log requests (pino, JSON to stdout)' },
  // createServer only: limits a deployment rarely changes, documented in the README's Limits table.
  { option: 'maxDimension', default: DEFAULT_SPEC_LIMITS.maxDimension, help: 'largest single dimension' },
  { option: 'maxJsonBytes', default: MiB, min: 1024, help: 'largest HTTP JSON body in bytes' },
  { option: 'lockTimeoutMs', default: 5000, help: 'wait for a write lock held elsewhere, in ms' },
  { option: 'chunkSize', default: MiB, min: 1024, help: 'WebSocket: bytes per data chunk' },
  { option: 'maxMessageBytes', default: 16 * MiB + 64 * 1024, min: 4096, help: 'WebSocket: largest incoming message in bytes' },
  { option: 'highWaterMark', default: 4 * MiB, min: 1024, help: 'WebSocket: bytes a connection may queue before the server waits for it to drain' },
  { option: 'authTimeoutMs', default: 5000, help: 'a WebSocket without an Authorization header must send hello { token } within this many ms' },
  { option: 'pressureSampleMs', default: 1000, min: 5, help: 'how often event-loop delay is sampled, in ms' },
  { option: 'maxSubscriptions', default: 64, help: 'WebSocket: subscriptions per connection' },
  { option: 'maxStreams', default: 32, help: 'WebSocket: gets one connection may have queued or streaming' },
  { option: 'maxUploads', default: 4, help: 'WebSocket: chunked uploads one connection may have in progress' },
  { option: 'maxQueue', default: 4096, help: 'WebSocket: largest event queue a subscription may ask for' },
]

/** The row of a `createServer` option (the first, for `tokens`). */
export function optionRow (option: string): OptionRow {
  const row = OPTION_TABLE.find((r) => r.option === option)
  if (row === undefined) throw new Error(`no option ${option} in the table`)
  return row
}

/** The row of a `pixelport serve` flag. */
export function flagRow (flag: string): OptionRow {
  const row = OPTION_TABLE.find((r) => r.flag === flag)
  if (row === undefined) throw new Error(`no flag --${flag} in the table`)
  return row
}

/** A fixed numeric default (not one computed from the machine or other options). */
function fixed (option: string): number {
  const value = optionRow(option).default
  if (typeof value !== 'number') throw new Error(`option ${option} has no fixed numeric default`)
  return value
}

/** The ImageStore's defaults, for a store made without a server (tests, benches, embedders). */
export const STORE_DEFAULTS = {
  blockSize: fixed('blockSize'),
  maxImages: fixed('maxImages'),
  maxDimension: fixed('maxDimension'),
  maxImageBytes: fixed('maxImageBytes'),
  lockTimeoutMs: fixed('lockTimeoutMs'),
  evict: optionRow('evict').default as 'none',
} as const
