/**
 * Every Redis key the cluster uses, in one place, so the data model can be read off one file:
 *
 * - `pxp:nodes`            set of node ids that have joined (members are pruned when their heartbeat lapsed)
 * - `pxp:node:<id>`        the node's heartbeat: JSON { id, url, startedAt, lastSeen }, expires after ttlMs
 * - `pxp:catalog:<id>`     hash image id → JSON descriptor of every image that node owns; expires after
 *                          CATALOG_TTL_FACTOR × ttlMs unless the node's heartbeat refreshes it
 * - `pxp:events`           one stream of created/updated/deleted/left entries for the whole cluster
 */

/** Header a forwarded request carries: the receiving node answers it itself and never forwards it again. */
export const FORWARDED_HEADER = 'x-pixelport-forwarded-by'

export const NODES_KEY = 'pxp:nodes'
export const EVENTS_KEY = 'pxp:events'

export function nodeKey (nodeId: string): string {
  return `pxp:node:${nodeId}`
}

export function catalogKey (nodeId: string): string {
  return `pxp:catalog:${nodeId}`
}

/**
 * A dead node's catalog outlives its heartbeat a little (listings filter by heartbeat, not by the catalog),
 * then Redis drops it by itself: nobody has to delete another node's keys, so no node can delete the
 * catalog of a node that is rejoining at that very moment.
 */
export const CATALOG_TTL_FACTOR = 3

/** Entries kept in the event stream (approximately: `MAXLEN ~`). A reader away longer than this loses events. */
export const EVENTS_MAXLEN = 10_000

/** Node ids: safe inside a Redis key and a URL, short enough to print. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
