/**
 * Mappings of a store's segments, shared by every attachment in this process.
 *
 * Mapping a segment is cheap; touching its pages the first time is not (a page fault each, and on virtual
 * machines a slow one). A process that attaches again, or opens many images of one block, reuses the
 * mapping whose pages are already faulted in. Names are never reused (each holds the store's random id and a
 * block number that only grows), so a name maps one segment for its whole life; mappings whose names are gone
 * (block released, store closed) are dropped whenever a new segment is mapped, and the garbage collector
 * unmaps them once nothing uses them.
 */
import { existsSync } from 'node:fs'
import { pxpError } from '../../protocol/errors.js'
import type { ShmAddon } from '../../shm/addon.js'
import { shmPath } from '../../shm/names.js'

const mapped = new Map<string, SharedArrayBuffer>()

/** The segment `name` mapped read-write; PXP_ERR_SHM when it cannot be. */
export function mapSegment (addon: ShmAddon, name: string): SharedArrayBuffer {
  const hit = mapped.get(name)
  if (hit !== undefined) return hit
  for (const old of mapped.keys()) if (!existsSync(shmPath(old))) mapped.delete(old)
  let buffer: SharedArrayBuffer
  try {
    buffer = addon.open(name)
  } catch (err) {
    throw pxpError('PXP_ERR_SHM', `cannot map segment ${name}: ${(err as Error).message}`)
  }
  mapped.set(name, buffer)
  return buffer
}
