/**
 * What every transport (HTTP routes, WebSocket endpoint, worker bridge) is given: the store and the
 * shared services on top of it. Transports depend on this; the store depends on none of them.
 */
import type { ClusterNode } from './cluster/node.js'
import type { ServerMetrics } from './metrics/metrics.js'
import type { ResolvedOptions } from './options.js'
import type { ImageStore } from './store/image-store.js'
import type { SnapshotCache } from './store/snapshots.js'

export interface ServerContext {
  readonly store: ImageStore
  readonly snapshots: SnapshotCache
  readonly options: ResolvedOptions
  /**
   * Where transports report bytes streamed, subscriptions and connections (`GET /metrics`). Always set by
   * createServer; optional so a context built for one transport in isolation needs none.
   */
  readonly metrics?: ServerMetrics
  /** Cluster membership (catalog, events, owners of other nodes' images); null or absent for a single node. */
  readonly cluster?: ClusterNode | null
}
