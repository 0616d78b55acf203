/**
 * Server options: defaults, and validation up front with messages that name the option.
 */
import os from 'node:os'
import { pxpError } from '../protocol/errors.js'
import type { BlockProvider } from './memory/block-provider.js'

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
}

export type ResolvedOptions = Required<Omit<ServerOptions, 'provider' | 'logger'>> & Pick<ServerOptions, 'provider' | 'logger'>

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
  }
}
