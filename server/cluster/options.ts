/**
 * `cluster` server option: validated up front, with messages that name the option.
 */
import os from 'node:os'
import { pxpError } from '../../protocol/errors.js'
import { NODE_ID_PATTERN } from './keys.js'
import type { ClusterConfig } from './node.js'

export interface ClusterOptions {
  /** Redis URL, `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  redis: string
  /**
   * This node's base URL as the other nodes reach it, e.g. `http://10.0.0.5:8080`. Default: the URL the
   * server listens on — only right when the others run on this host (or the host is not a wildcard).
   */
  advertise?: string
  /** Node id, `[A-Za-z0-9._-]`, at most 64 characters. Default: `<hostname>-<port>` (with port 0: hostname, pid and a random suffix). */
  nodeId?: string
  /** Bearer token this node sends to its peers when it forwards a request. */
  token?: string
  /** Heartbeat interval in ms. Default 1000. */
  heartbeatMs?: number
  /** A node whose heartbeat is older than this (ms) is gone. Default 3000; at least 2 × heartbeatMs. */
  ttlMs?: number
  /** Updates of one image reach Redis at most once per this many ms (latest wins). Default 20. */
  coalesceMs?: number
}

/** The resolved options; `nodeId` null means "derive it from the hostname and port" (defaultNodeId). */
export type ResolvedClusterOptions = Omit<ClusterConfig, 'nodeId'> & { nodeId: string | null }

function int (name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw pxpError('PXP_ERR_VALIDATION', `option cluster.${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

export function resolveClusterOptions (cluster: unknown, host: string): ResolvedClusterOptions | null {
  if (cluster === undefined || cluster === null) return null
  if (typeof cluster !== 'object' || Array.isArray(cluster)) {
    throw pxpError('PXP_ERR_VALIDATION', `option cluster must be { redis, advertise?, nodeId?, token? }, got ${JSON.stringify(cluster)}`)
  }
  const c = cluster as ClusterOptions
  if (typeof c.redis !== 'string' || !/^rediss?:\/\/[^/\s]+/.test(c.redis)) {
    throw pxpError('PXP_ERR_VALIDATION', `option cluster.redis must be a URL like redis://host:6379, got ${JSON.stringify(c.redis)}`)
  }
  let advertise: string | null = null
  if (c.advertise !== undefined) {
    if (typeof c.advertise !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(c.advertise)) {
      throw pxpError('PXP_ERR_VALIDATION', `option cluster.advertise must be a base URL like http://10.0.0.5:8080 (no path), got ${JSON.stringify(c.advertise)}`)
    }
    advertise = c.advertise.replace(/\/+$/, '')
  } else if (host === '0.0.0.0' || host === '::' || host === '[::]') {
    throw pxpError('PXP_ERR_VALIDATION', `option cluster.advertise is required when listening on ${host}: the other nodes need an address that reaches this one`)
  }
  if (c.nodeId !== undefined && (typeof c.nodeId !== 'string' || !NODE_ID_PATTERN.test(c.nodeId))) {
    throw pxpError('PXP_ERR_VALIDATION', `option cluster.nodeId must be 1-64 characters of A-Z a-z 0-9 . _ - (not starting with . _ -), got ${JSON.stringify(c.nodeId)}`)
  }
  if (c.token !== undefined && (typeof c.token !== 'string' || c.token.length === 0 || /\s/.test(c.token))) {
    throw pxpError('PXP_ERR_VALIDATION', 'option cluster.token must be a non-empty string without blanks')
  }
  const heartbeatMs = int('heartbeatMs', c.heartbeatMs ?? 1000, 10)
  const ttlMs = int('ttlMs', c.ttlMs ?? Math.max(3000, 3 * heartbeatMs), 2 * heartbeatMs)
  return {
    redis: c.redis,
    advertise,
    nodeId: c.nodeId ?? null,
    token: c.token ?? null,
    heartbeatMs,
    ttlMs,
    coalesceMs: int('coalesceMs', c.coalesceMs ?? 20, 0),
  }
}

/** The node id when none was given: host name and port, so a restarted node takes its old place. */
export function defaultNodeId (port: number): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[._-]+/, '').slice(0, 50) || 'node'
  // Port 0 (any free one) is not known yet: a random suffix keeps two such nodes on one host apart.
  return port === 0 ? `${host}-${process.pid}-${Math.random().toString(36).slice(2, 8)}` : `${host}-${port}`
}
