/**
 * The contract between the cluster membership/catalog (redis-backed, ./node.ts and friends) and the
 * parts of the server that read other nodes' images (worker replicas, cross-node reads).
 *
 * Kept apart so replicas and routes depend on what the cluster tells them, not on Redis.
 */
import type { EventEmitter } from 'node:events'
import type { ImageDescriptor } from '../../protocol/descriptor.js'

/** One image owned by another live node, as the catalog knows it. */
export interface RemoteEntry {
  readonly id: string
  /** Node id of the owner. */
  readonly node: string
  /** The owner's advertised base URL (`--advertise`), e.g. `http://10.0.0.5:8080`. */
  readonly url: string
  readonly generation: number
  /** The owner's descriptor (its `location` is meaningless here: memory is on the owner). */
  readonly descriptor: ImageDescriptor
}

export interface ClusterDirectoryEvents {
  /** Another node created or committed an image (in order per image). */
  updated: [RemoteEntry]
  /** Another node deleted an image. */
  deleted: [{ id: string, node: string }]
  /** A node's heartbeat lapsed or it left: its images are gone from the catalog. */
  'node-down': [{ node: string }]
}

export interface ClusterDirectory extends EventEmitter<ClusterDirectoryEvents> {
  /** This node's id. */
  readonly nodeId: string
  /** Where `id` lives if another live node owns it; null if unknown or owned by this node. */
  locate (id: string): Promise<RemoteEntry | null>
  /** Headers for a node-to-node HTTP request to `peer` (the cluster token, if any, and only for a live peer at its advertised URL). */
  peerHeaders (peer: { node: string, url: string }): Record<string, string>
}
