/**
 * Reading the image table from any thread: find an image's slot by id and build its descriptor from the
 * slot's words alone. This is the JavaScript counterpart of numpy's `__array_struct__`: everything needed to
 * look at the pixels is in shared memory, so no message is needed.
 */
import { arrayInterface, type ImageDescriptor } from './descriptor.js'
import { dtypeByCode } from './dtypes.js'
import { fnv1a, HEADER, MAX_ID_BYTES, shapeWord, SLOT, SLOT_FLAG, SLOT_STATE, slotBase, strideWord } from './layout.js'
import { modeByCode } from './modes.js'
import { isCContiguous } from './spec.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A slot found for an id, with the epoch that proves it is still the same image. */
export interface SlotRef {
  slot: number
  epoch: number
}

/** Is `ref` still the live image it was when looked up? */
export function isLive (words: Int32Array, ref: SlotRef): boolean {
  const base = slotBase(ref.slot)
  return Atomics.load(words, base + SLOT.STATE) === SLOT_STATE.LIVE && Atomics.load(words, base + SLOT.EPOCH) === ref.epoch
}

/** The id stored in `slot`. */
export function slotId (words: Int32Array, slot: number): string {
  const base = slotBase(slot)
  const length = words[base + SLOT.ID_LENGTH]
  const bytes = new Uint8Array(MAX_ID_BYTES)
  new Int32Array(bytes.buffer).set(words.subarray(base + SLOT.ID_BYTES, base + SLOT.ID_BYTES + MAX_ID_BYTES / 4))
  return decoder.decode(bytes.subarray(0, length))
}

/** Find the live slot of `id` by scanning the table (hash first, bytes to confirm). */
export function findSlot (words: Int32Array, id: string): SlotRef | null {
  const idBytes = encoder.encode(id)
  if (idBytes.length > MAX_ID_BYTES) return null
  const hash = fnv1a(idBytes)
  const highWater = Atomics.load(words, HEADER.HIGH_WATER)
  for (let slot = 0; slot < highWater; slot++) {
    const base = slotBase(slot)
    if (words[base + SLOT.ID_HASH] !== hash) continue
    const epoch = Atomics.load(words, base + SLOT.EPOCH)
    if (Atomics.load(words, base + SLOT.STATE) !== SLOT_STATE.LIVE) continue
    if (words[base + SLOT.ID_LENGTH] !== idBytes.length || slotId(words, slot) !== id) continue
    // Fields are published before STATE turns LIVE; re-check the epoch to be sure we read one image.
    if (Atomics.load(words, base + SLOT.EPOCH) !== epoch) continue
    return { slot, epoch }
  }
  return null
}

/** The slot whose words hold the seqlock, generation, lock and frames of `slot` (its root for views). */
export function controlSlotOf (words: Int32Array, slot: number): number {
  const parent = words[slotBase(slot) + SLOT.PARENT]
  return parent >= 0 ? parent : slot
}

/**
 * Build the descriptor of a block-layout image or view from its slot words. Line-based images need their
 * row table, which is not in shared memory: the caller asks the server for those.
 */
export function descriptorFromSlot (words: Int32Array, slot: number): ImageDescriptor {
  const base = slotBase(slot)
  const flags = words[base + SLOT.FLAGS]
  const dtype = dtypeByCode(words[base + SLOT.DTYPE])
  const mode = modeByCode(words[base + SLOT.MODE])
  const ndim = words[base + SLOT.NDIM]
  // Shapes are uint32 (a 1-D image may be longer than 2^31 items of |u1); strides are signed.
  const shape = Array.from({ length: ndim }, (_, i) => words[base + shapeWord(i)] >>> 0)
  const strides = Array.from({ length: ndim }, (_, i) => words[base + strideWord(i)])
  const control = controlSlotOf(words, slot)
  const cbase = slotBase(control)
  const byteOffset = words[base + SLOT.BYTE_OFFSET] >>> 0
  const frames = words[cbase + SLOT.FRAMES]
  const frame = Atomics.load(words, cbase + SLOT.FRONT)
  const frameStride = words[cbase + SLOT.FRAME_STRIDE] >>> 0
  const isView = (flags & SLOT_FLAG.VIEW) !== 0
  const lines = (flags & SLOT_FLAG.LINES) !== 0
  // A replica's owner and staleness live in the server: callers that need them ask it (WorkerStore.open does).
  const replica = (flags & SLOT_FLAG.REPLICA) !== 0
  let offset = 0
  let view: ImageDescriptor['view'] = null
  let aiStrides: number[] | null = null
  if (isView) {
    const rootOffset = words[cbase + SLOT.BYTE_OFFSET] >>> 0
    offset = byteOffset - rootOffset
    const rowStride = strides[0]
    const colStride = strides[1]
    view = { parent: slotId(words, control), x: (offset % rowStride) / colStride, y: Math.floor(offset / rowStride), width: shape[1], height: shape[0] }
    aiStrides = isCContiguous(shape, strides, dtype.itemSize) ? null : strides
  }
  const byteLength = words[base + SLOT.BYTE_LENGTH] >>> 0
  const channels = shape.slice(2).reduce((n, d) => n * d, 1)
  return {
    id: slotId(words, slot),
    mode: mode?.name ?? null,
    width: shape.length >= 2 ? shape[1] : 1,
    height: shape[0],
    channels,
    typestr: dtype.typestr,
    shape,
    byteLength,
    generation: Atomics.load(words, cbase + SLOT.GENERATION) >>> 0,
    readonly: (flags & SLOT_FLAG.READONLY) !== 0 || lines,
    layout: lines ? 'lines' : 'block',
    copied: lines || replica,
    base: isView ? slotId(words, control) : slotId(words, slot),
    view,
    location: lines
      ? { kind: 'lines', rowBytes: byteLength / shape[0], segments: [] }
      : { kind: 'block', block: words[base + SLOT.BLOCK], byteOffset: byteOffset + frame * frameStride, frames, frame, frameStride },
    __array_interface__: arrayInterface(shape, dtype.typestr, aiStrides, offset),
  }
}
