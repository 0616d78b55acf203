/**
 * Server options: defaults, and validation up front with messages that name the option.
 */
import os from 'node:os'
import { pxpError } from '../protocol/errors.js'
import type { BlockProvider } from './memory/block-provider.js'
import { DEFAULT_SHM_PREFIX, validatePrefix } from './memory/shm-names.js'
import { SHM_MODES } from './memory/shm-provider.js'

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
}

export interface ShmOptions {
  mode?: number
  prefix?: string
}

export type ResolvedOptions = Required<Omit<ServerOptions, 'provider' | 'logger' | 'shm'>> & Pick<ServerOptions, 'provider' | 'logger'> & {
  /** Shared memory asked for (it may still be unavailable), or null. */
  shm: Required<ShmOptions> | null
}

const MiB = 1024 * 1024
const GiB = 1024 * MiB

export function defaultCapacity (): number {
  return Math.min(16 * GiB, Math.floor(os.totalmem() / 4))
}

function positiveInt (name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw pxpError('PXP_ERR_VALIDATION', `option ${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

export function resolveOptions (options: ServerOptions = {}): ResolvedOptions {
  const o = options
  const port = o.port ?? 8080
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw pxpError('PXP_ERR_VALIDATION', `option port must be an integer from 0 to 65535, got ${JSON.stringify(port)}`)
  }
  const host = o.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host.length === 0) throw pxpError('PXP_ERR_VALIDATION', 'option host must be a non-empty string')
  return {
    host,
    port,
    blockSize: positiveInt('blockSize', o.blockSize ?? 64 * MiB, 64),
    capacity: positiveInt('capacity', o.capacity ?? defaultCapacity(), 64),
    maxImages: positiveInt('maxImages', o.maxImages ?? 16384),
    maxDimension: positiveInt('maxDimension', o.maxDimension ?? 65536),
    maxImageBytes: positiveInt('maxImageBytes', o.maxImageBytes ?? GiB),
    maxJsonBytes: positiveInt('maxJsonBytes', o.maxJsonBytes ?? MiB, 1024),
    snapshotBytes: positiveInt('snapshotBytes', o.snapshotBytes ?? 512 * MiB, 1024),
    lockTimeoutMs: positiveInt('lockTimeoutMs', o.lockTimeoutMs ?? 5000),
    chunkSize: positiveInt('chunkSize', o.chunkSize ?? MiB, 1024),
    maxMessageBytes: positiveInt('maxMessageBytes', o.maxMessageBytes ?? 16 * MiB + 64 * 1024, 4096),
    highWaterMark: positiveInt('highWaterMark', o.highWaterMark ?? 4 * MiB, 1024),
    logger: o.logger ?? false,
    provider: o.provider,
    shm: resolveShm(o.shm, o.provider),
  }
}

function resolveShm (shm: unknown, provider: BlockProvider | undefined): Required<ShmOptions> | null {
  if (shm === undefined || shm === false) return null
  if (shm !== true && (typeof shm !== 'object' || shm === null || Array.isArray(shm))) {
    throw pxpError('PXP_ERR_VALIDATION', `option shm must be a boolean or { mode, prefix }, got ${JSON.stringify(shm)}`)
  }
  if (provider !== undefined) throw pxpError('PXP_ERR_VALIDATION', 'options shm and provider cannot be combined: shm chooses the provider')
  const { mode = 0o600, prefix = DEFAULT_SHM_PREFIX } = shm === true ? {} : shm as ShmOptions
  if (!(SHM_MODES as readonly unknown[]).includes(mode)) {
    throw pxpError('PXP_ERR_VALIDATION', `option shm.mode must be one of 0o600, 0o640, 0o660, got ${typeof mode === 'number' ? '0o' + mode.toString(8) : JSON.stringify(mode)}`)
  }
  validatePrefix(prefix)
  return { mode, prefix }
}
