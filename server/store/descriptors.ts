/**
 * The descriptor of an image or view: what clients see of a record (its spec, generation, where its bytes
 * are, numpy's array interface, and for pixels that come from elsewhere, their origin's fields).
 */
import { arrayInterface, type ImageDescriptor, type Location } from '../../protocol/descriptor.js'
import { SLOT, slotBase } from '../../protocol/layout.js'
import { isCContiguous } from '../../protocol/spec.js'
import { generationOf } from '../../protocol/sync.js'
import type { Arena } from '../memory/arena.js'
import type { ImageTable } from './image-table.js'
import type { ImageRecord } from './records.js'

/** The descriptor of `record` now (generation and front frame read from the table). */
export function describeRecord (record: ImageRecord, table: ImageTable, arena: Arena, attachSocket: string | null): ImageDescriptor {
  const { spec } = record
  // Views share their root's generation and control words.
  const root = record.parent ?? record
  const generation = generationOf(table.words, root.slot)
  const origin = root.origin
  const copied = record.layout === 'lines' || origin !== undefined
  let location: Location
  let strides: number[] | null = null
  let offset = 0
  // With shared memory, what a process on the same host needs: segment names and where the control words are.
  const shared = table.shared
  const control = shared
    ? { table: table.segment, slot: record.slot, controlSlot: root.slot, controlOffset: slotBase(root.slot) * Int32Array.BYTES_PER_ELEMENT, socket: attachSocket }
    : {}
  if (record.layout === 'lines') {
    location = {
      kind: 'lines',
      rowBytes: spec.rowBytes,
      segments: record.runs!.map((r) => ({ block: r.block, byteOffset: r.offset, rows: r.rows, ...(shared ? { segment: segmentOf(arena, r.block) } : {}) })),
      ...control,
    }
  } else {
    const frame = record.frames > 1 ? table.word(root.slot, SLOT.FRONT) : 0
    location = {
      kind: 'block',
      block: record.block,
      byteOffset: record.byteOffset + frame * record.frameStride,
      frames: record.frames,
      frame,
      frameStride: record.frameStride,
      ...(shared ? { segment: segmentOf(arena, record.block) } : {}),
      ...control,
    }
    if (record.parent !== null) {
      offset = record.byteOffset - root.byteOffset
      strides = isCContiguous(spec.shape, record.strides, spec.dtype.itemSize) ? null : [...record.strides]
    }
  }
  return {
    id: record.id,
    mode: spec.mode?.name ?? null,
    width: spec.width,
    height: spec.height,
    channels: spec.channels,
    typestr: spec.dtype.typestr,
    shape: [...spec.shape],
    byteLength: spec.byteLength,
    generation,
    readonly: record.readonly || copied,
    layout: record.layout,
    copied,
    base: root.id,
    view: record.view,
    location,
    __array_interface__: arrayInterface(spec.shape, spec.dtype.typestr, strides, offset),
    ...(origin !== undefined ? origin.describe() : {}),
  }
}

/** The shared-memory name of block `index`, or null in process memory. */
function segmentOf (arena: Arena, index: number): string | null {
  return arena.block(index)?.memory.name ?? null
}
