/**
 * What the WebSocket endpoint asks the cluster: a descriptor of another node's image, and whether an op
 * must be refused because another node owns the image.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { ClusterDescriptor, ClusterNode } from './node.js'

/** The catalog's descriptor of an image another live node owns (with `node` and `url`), else PXP_ERR_NOT_FOUND. */
export async function describeRemote (cluster: ClusterNode, id: string): Promise<ClusterDescriptor> {
  const entry = await cluster.locate(id)
  if (entry === null) throw pxpError('PXP_ERR_NOT_FOUND', id)
  return { ...entry.descriptor, node: entry.node, url: entry.url }
}

/**
 * PXP_ERR_NOT_OWNER when `id` is not here and another node is known to own it (from this node's mirror of
 * the catalog: synchronous, so a chunked upload's order is kept), else null.
 */
export function notOwner (cluster: ClusterNode | null | undefined, has: (id: string) => boolean, id: string | undefined, hint: string): PixelportError | null {
  if (cluster == null || id === undefined || has(id)) return null
  const owner = cluster.ownerOf(id)
  return owner === null ? null : pxpError('PXP_ERR_NOT_OWNER', id, owner.node, owner.url, hint)
}
