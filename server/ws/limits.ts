/**
 * The per-connection limits of the WebSocket endpoint: what `welcome` announces and every module enforces.
 */
import { pxpError } from '../../protocol/errors.js'
import type { ServerLimits } from '../../protocol/messages.js'
import type { ResolvedOptions } from '../options.js'

/** Per-connection limits; the server options set them, a plugin registration may override them (tests). */
export interface ConnectionLimits {
  /** Subscriptions one connection may hold. Default 64. */
  maxSubscriptions: number
  /** `get` requests one connection may have queued or streaming. Default 32. */
  maxStreams: number
  /** Chunked uploads one connection may have in progress. Default 4. */
  maxUploads: number
  /** Largest `queue` a subscription may ask for. Default 4096. */
  maxQueue: number
  /** Queue bound of a subscription that names none. Default 64. */
  defaultQueue: number
}

export const CONNECTION_LIMIT_DEFAULTS: Readonly<ConnectionLimits> = Object.freeze({
  maxSubscriptions: 64,
  maxStreams: 32,
  maxUploads: 4,
  maxQueue: 4096,
  defaultQueue: 64,
})

/** The limits of one endpoint, validated, with the server options they derive from (`maxImageBytes`: the store's). */
export function resolveLimits (options: ResolvedOptions, maxImageBytes: number, overrides: Partial<ConnectionLimits> = {}): ServerLimits {
  const fromOptions: Partial<ConnectionLimits> = {
    maxSubscriptions: options.maxSubscriptions,
    maxStreams: options.maxStreams,
    maxUploads: options.maxUploads,
    maxQueue: options.maxQueue,
  }
  const merged = { ...CONNECTION_LIMIT_DEFAULTS, ...withoutUndefined(fromOptions), ...overrides }
  if (overrides.defaultQueue === undefined) merged.defaultQueue = Math.min(merged.defaultQueue, merged.maxQueue)
  for (const [name, value] of Object.entries(merged)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw pxpError('PXP_ERR_VALIDATION', `WebSocket limit ${name} must be an integer >= 1, got ${JSON.stringify(value)}`)
    }
  }
  if (merged.defaultQueue > merged.maxQueue) {
    throw pxpError('PXP_ERR_VALIDATION', `WebSocket limit defaultQueue (${merged.defaultQueue}) exceeds maxQueue (${merged.maxQueue})`)
  }
  return {
    maxMessageBytes: options.maxMessageBytes,
    // A chunk and its header must fit in one message the client will accept as well as we would.
    chunkSize: Math.min(options.chunkSize, options.maxMessageBytes - 1024),
    highWaterMark: options.highWaterMark,
    maxImageBytes,
    ...merged,
  }
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
