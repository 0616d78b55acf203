/**
 * Where an image's bytes go, worked out before anything is reserved: the frame buffers and layout a create
 * request asks for, the arena allocation that holds them, and the rectangle of its root a view shows.
 */
import type { ViewInfo } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { MAX_FRAMES } from '../../protocol/layout.js'
import { cStrides, makeSpec, type CreateRequest, type ImageSpec, type SpecLimits } from '../../protocol/spec.js'
import type { Allocation, Arena, RowRun } from '../memory/arena.js'
import { alignUp } from '../memory/run-allocator.js'
import type { Pieces } from './pixels.js'
import { rootOf, type ImageOrigin, type ImageRecord, type RecordInit } from './records.js'
import type { ViewRequest } from './store-types.js'

export interface Shape {
  layout: 'block' | 'lines'
  frames: number
  /** Bytes from one frame buffer to the next. */
  frameStride: number
}

/** The memory of a new image: one allocation (block layout, every frame) or runs of rows. */
export interface Placement {
  allocation: Allocation | null
  runs: RowRun[] | null
}

/** The layout and frame buffers `request` asks for, checked against the limits. */
export function shapeOf (request: CreateRequest, spec: ImageSpec, limits: SpecLimits): Shape {
  const layout = request.layout ?? 'block'
  const frames = request.frames ?? 1
  if (!Number.isInteger(frames) || frames < 1 || frames > MAX_FRAMES) {
    throw pxpError('PXP_ERR_VALIDATION', `frames must be an integer from 1 to ${MAX_FRAMES}`)
  }
  if (frames > 1 && layout === 'lines') throw pxpError('PXP_ERR_VALIDATION', 'frame buffers need layout "block"')
  const frameStride = alignUp(spec.byteLength)
  if (frames > 1 && frameStride * frames > limits.maxImageBytes) {
    throw pxpError('PXP_ERR_TOO_LARGE', frameStride * frames, limits.maxImageBytes)
  }
  return { layout, frames, frameStride }
}

/** Allocate the memory for an image of `spec` and `shape` on `arena` (or a planning copy of it). */
export function place (arena: Arena, spec: ImageSpec, shape: Shape): Placement {
  if (shape.layout === 'lines') return { allocation: null, runs: arena.allocateRows(spec.rowBytes, spec.height, true) }
  const one = shape.frames > 1 ? arena.allocate(shape.frameStride * shape.frames) : arena.tryAllocate(spec.byteLength)
  // Not one run left, but enough memory in pieces: store it line by line rather than refuse.
  return one !== null ? { allocation: one, runs: null } : { allocation: null, runs: arena.allocateRows(spec.rowBytes, spec.height, false) }
}

export interface ViewPlacement {
  root: ImageRecord
  spec: ImageSpec
  /** First byte of the view in its root's block. */
  byteOffset: number
  view: ViewInfo
}

/** The rectangle `req` of `target` as a view of its root (a view of a view is a view of the root). */
export function viewOf (target: ImageRecord, req: ViewRequest, limits: SpecLimits): ViewPlacement {
  const { x, y, width, height } = req
  const parentSpec = target.spec
  const inside = [x, y, width, height].every((n) => Number.isInteger(n)) && x >= 0 && y >= 0 && width >= 1 && height >= 1 &&
    x + width <= parentSpec.width && y + height <= parentSpec.height
  if (!inside) {
    throw pxpError('PXP_ERR_BAD_REGION', `{x:${x},y:${y},width:${width},height:${height}}`, target.id, `${parentSpec.width}x${parentSpec.height}`)
  }
  if (target.layout === 'lines') throw pxpError('PXP_ERR_VALIDATION', `views need a block image; ${target.id} is line-based`)
  if (parentSpec.shape.length < 2) throw pxpError('PXP_ERR_VALIDATION', `views need a 2-D image; ${target.id} has shape [${parentSpec.shape.join(', ')}]`)
  // One level of indirection, offsets composed.
  const root = rootOf(target)
  const rootX = x + (target.view?.x ?? 0)
  const rootY = y + (target.view?.y ?? 0)
  const spec = makeSpec([height, width, ...parentSpec.shape.slice(2)], parentSpec.dtype, parentSpec.mode, limits)
  const byteOffset = root.byteOffset + rootY * root.strides[0] + rootX * root.strides[1]
  return { root, spec, byteOffset, view: { parent: root.id, x: rootX, y: rootY, width, height } }
}

/** A new root image in the memory of `placement`. With an origin, it is read-only for every client. */
export function imageInit (id: string, spec: ImageSpec, shape: Shape, placement: Placement, pieces: Pieces[], readonly: boolean, origin?: ImageOrigin): RecordInit {
  const { allocation, runs } = placement
  return {
    id,
    spec,
    readonly: readonly || origin !== undefined,
    layout: runs === null ? 'block' : 'lines',
    allocation,
    runs,
    block: allocation?.block ?? -1,
    byteOffset: allocation?.offset ?? 0,
    strides: cStrides(spec.shape, spec.dtype.itemSize),
    parent: null,
    view: null,
    frames: shape.frames,
    frameStride: shape.frameStride,
    pieces,
    ...(origin !== undefined ? { origin } : {}),
  }
}

/** A view: its root's memory, strides and frame buffers, its own offset and shape. */
export function viewInit (id: string, spec: ImageSpec, readonly: boolean, at: Omit<ViewPlacement, 'spec'>, pieces: Pieces[]): RecordInit {
  const { root } = at
  return {
    id,
    spec,
    readonly,
    layout: 'block',
    allocation: null,
    runs: null,
    block: root.block,
    byteOffset: at.byteOffset,
    strides: root.strides,
    parent: root,
    view: at.view,
    frames: root.frames,
    frameStride: root.frameStride,
    pieces,
  }
}
