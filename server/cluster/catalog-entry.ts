/**
 * Catalog values as read from Redis: a descriptor JSON, checked for the fields a node relies on, and the
 * RemoteEntry it makes for the (verified) node that owns it.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { RemoteEntry } from './directory.js'
import type { NodeInfo } from './membership.js'

/** A descriptor from a catalog hash or an event; null when it is not one. */
export function parseDescriptor (text: string): ImageDescriptor | null {
  try {
    const d = JSON.parse(text) as ImageDescriptor
    return typeof d === 'object' && d !== null && typeof d.id === 'string' && typeof d.generation === 'number' ? d : null
  } catch {
    return null
  }
}

/** Where `descriptor`'s image lives: always the URL of the node's registration, never one in the value. */
export function entryOf (node: NodeInfo, descriptor: ImageDescriptor): RemoteEntry {
  return { id: descriptor.id, node: node.id, url: node.url, generation: descriptor.generation, descriptor }
}
