/**
 * Checking the image table of a previous store before adopting it (`--recover`).
 *
 * A table left in /dev/shm by a dead server is untrusted input: it may come from another layout version, be
 * truncated, or have been scribbled on. Nothing of it is used unless every record holds together: known
 * header, records whose words are in range, ids whose FNV-1a hash matches (the per-record checksum the layout
 * already has), pixels inside existing blocks, no two images on the same bytes. Any failure refuses the whole
 * table, with a reason that names the record and the file.
 */
import { dtypeByCode } from '../../protocol/dtypes.js'
import { modeByCode } from '../../protocol/modes.js'
import {
  fnv1a, HEADER, HEADER_WORDS, LAYOUT_VERSION, MAX_FRAMES, MAX_ID_BYTES, MAX_NDIM, shapeWord, SLOT, SLOT_FLAG, SLOT_STATE, SLOT_WORDS, slotBase, strideWord, tableBytes,
  type SlotFields,
} from '../../protocol/layout.js'
import { ALIGNMENT, alignUp } from './run-allocator.js'
import { cStrides } from '../../protocol/spec.js'

/** A run of rows of a line-based image, as the store's sidecar records it: [block, byteOffset, rows]. */
export type SavedRun = [number, number, number]

/** What the sidecar file (`<prefix>-<storeId>-meta`) holds: what the table has no room for. */
export interface StoreMeta {
  version: 1
  /** Line-based images by slot: the epoch and id they were published with, and their runs of rows. */
  lines: Record<string, { epoch: number, id: string, runs: SavedRun[] }>
}

/** One record of the table that passed every check. */
export interface CheckedSlot extends SlotFields {
  slot: number
  state: number
  shape: number[]
  strides: number[]
  /** Line-based images only. */
  runs: SavedRun[] | null
}

export interface CheckedTable {
  capacity: number
  highWater: number
  slots: CheckedSlot[]
}

/** Thrown (and caught by the adopter) when the table must not be adopted. */
export class TableRefused extends Error {}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Check a table against the block sizes found on disk (`blocks`: index → bytes) and the sidecar. Returns
 * every record in use; throws TableRefused saying what is wrong.
 */
export function checkTable (words: Int32Array, fileBytes: number, blocks: ReadonlyMap<number, number>, meta: StoreMeta | null): CheckedTable {
  if (fileBytes < HEADER_WORDS * 4) throw new TableRefused(`table is ${fileBytes} bytes, shorter than its header`)
  const version = words[HEADER.LAYOUT_VERSION]
  if (version !== LAYOUT_VERSION) throw new TableRefused(`table has layout version ${version}, this server reads version ${LAYOUT_VERSION}`)
  if (words[HEADER.SLOT_WORDS] !== SLOT_WORDS) throw new TableRefused(`table has ${words[HEADER.SLOT_WORDS]} words per record, expected ${SLOT_WORDS}`)
  const capacity = words[HEADER.SLOT_CAPACITY]
  if (!(capacity >= 1) || tableBytes(capacity) !== fileBytes) {
    throw new TableRefused(`table capacity ${capacity} does not match its size of ${fileBytes} bytes`)
  }
  const highWater = words[HEADER.HIGH_WATER]
  if (!(highWater >= 0 && highWater <= capacity)) throw new TableRefused(`HIGH_WATER ${highWater} is outside [0, ${capacity}]`)
  const slots: CheckedSlot[] = []
  for (let slot = 0; slot < highWater; slot++) {
    const state = words[slotBase(slot) + SLOT.STATE]
    if (state === SLOT_STATE.FREE) continue
    if (state !== SLOT_STATE.LIVE && state !== SLOT_STATE.DELETED) throw new TableRefused(`record ${slot}: STATE ${state} is not 0, 1 or 2`)
    slots.push(checkSlot(words, slot, state, blocks, meta))
  }
  for (let slot = highWater; slot < capacity; slot++) {
    if (words[slotBase(slot) + SLOT.STATE] !== SLOT_STATE.FREE) throw new TableRefused(`record ${slot} is in use above HIGH_WATER ${highWater}`)
  }
  checkParents(slots)
  checkOverlaps(slots, blocks)
  return { capacity, highWater, slots }
}

function checkSlot (words: Int32Array, slot: number, state: number, blocks: ReadonlyMap<number, number>, meta: StoreMeta | null): CheckedSlot {
  const base = slotBase(slot)
  const w = (field: number): number => words[base + field]
  const fail = (what: string): never => { throw new TableRefused(`record ${slot}: ${what}`) }
  const flags = w(SLOT.FLAGS)
  if ((flags & ~(SLOT_FLAG.READONLY | SLOT_FLAG.VIEW | SLOT_FLAG.LINES | SLOT_FLAG.REPLICA)) !== 0) fail(`unknown FLAGS ${flags}`)
  let itemSize = 0
  try { itemSize = dtypeByCode(w(SLOT.DTYPE)).itemSize } catch { fail(`unknown DTYPE ${w(SLOT.DTYPE)}`) }
  const mode = w(SLOT.MODE)
  if (mode !== 0 && modeByCode(mode) === null) fail(`unknown MODE ${mode}`)
  const ndim = w(SLOT.NDIM)
  if (!(ndim >= 1 && ndim <= MAX_NDIM)) fail(`NDIM ${ndim} is not 1-${MAX_NDIM}`)
  const shape: number[] = []
  const strides: number[] = []
  for (let i = 0; i < ndim; i++) {
    if (!(w(shapeWord(i)) >= 1)) fail(`dimension ${i} is ${w(shapeWord(i))}`)
    shape.push(w(shapeWord(i)))
    strides.push(w(strideWord(i)))
  }
  const byteLength = shape.reduce((n, d) => n * d, itemSize)
  if ((w(SLOT.BYTE_LENGTH) >>> 0) !== byteLength % 2 ** 32) fail(`BYTE_LENGTH ${w(SLOT.BYTE_LENGTH) >>> 0} does not match shape [${shape.join(', ')}] of ${itemSize}-byte items`)
  const idLength = w(SLOT.ID_LENGTH)
  if (!(idLength >= 1 && idLength <= MAX_ID_BYTES)) fail(`ID_LENGTH ${idLength}`)
  const idBytes = new Uint8Array(words.buffer, words.byteOffset + (base + SLOT.ID_BYTES) * 4, idLength).slice()
  if (fnv1a(idBytes) !== w(SLOT.ID_HASH)) fail('the id does not match its hash')
  let id = ''
  try { id = decoder.decode(idBytes) } catch { fail('the id is not UTF-8') }
  const frames = w(SLOT.FRAMES)
  if (!(frames >= 1 && frames <= MAX_FRAMES)) fail(`FRAMES ${frames}`)
  const front = w(SLOT.FRONT)
  if (!(front >= 0 && front < frames)) fail(`FRONT ${front} with ${frames} frame buffers`)
  const frameStride = w(SLOT.FRAME_STRIDE) >>> 0
  const block = w(SLOT.BLOCK)
  const byteOffset = w(SLOT.BYTE_OFFSET) >>> 0
  const parent = w(SLOT.PARENT)
  const view = (flags & SLOT_FLAG.VIEW) !== 0
  // A view's frames are its root's (checked in checkParents).
  if (!view && frames > 1 && frameStride !== alignUp(byteLength)) fail(`FRAME_STRIDE ${frameStride} for ${byteLength}-byte frames`)
  const lines = (flags & SLOT_FLAG.LINES) !== 0
  if (view !== (parent !== -1)) fail(`PARENT ${parent} with FLAGS ${flags}`)
  let runs: SavedRun[] | null = null
  if (lines) {
    if (view || frames !== 1 || block !== -1) fail('a line-based record must be a root with one frame and BLOCK -1')
    const saved = meta?.lines[String(slot)]
    if (saved === undefined || saved.epoch !== w(SLOT.EPOCH) || saved.id !== id) fail('line-based image without its rows in the meta file')
    runs = saved!.runs
    const rowBytes = byteLength / shape[0]
    let rows = 0
    for (const run of runs!) {
      if (!Array.isArray(run) || run.length !== 3 || !run.every(Number.isSafeInteger)) fail('a malformed run of rows in the meta file')
      const [b, offset, n] = run
      if (n < 1 || offset < 0 || offset % ALIGNMENT !== 0 || offset + n * rowBytes > (blocks.get(b) ?? -1)) fail(`rows at block ${b} offset ${offset} are outside the block`)
      rows += n
    }
    if (rows !== shape[0]) fail(`the meta file has ${rows} rows, the shape ${shape[0]}`)
  } else {
    const size = blocks.get(block)
    if (size === undefined) fail(`block ${block} is missing`)
    const extent = view ? byteOffset + 1 : byteOffset + (frames > 1 ? frameStride * frames : byteLength)
    if ((!view && byteOffset % ALIGNMENT !== 0) || extent > size!) fail(`pixels at ${byteOffset} (${extent - byteOffset} bytes) are outside block ${block} of ${size} bytes`)
    if (!view) {
      const c = cStrides(shape, itemSize)
      if (c.some((s, i) => s !== strides[i])) fail(`STRIDES [${strides.join(', ')}] are not C order`)
    }
  }
  return { slot, state, id, flags, dtype: w(SLOT.DTYPE), mode, shape, strides, block, byteOffset, byteLength, parent, frames, frameStride, runs }
}

/** Views point at a root record of the same block that is in use, and lie inside it. */
function checkParents (slots: CheckedSlot[]): void {
  const bySlot = new Map(slots.map((s) => [s.slot, s]))
  for (const s of slots) {
    if (s.parent === -1) continue
    const root = bySlot.get(s.parent)
    const fail = (what: string): never => { throw new TableRefused(`record ${s.slot} (view): ${what}`) }
    if (root === undefined || root.parent !== -1 || (root.flags & SLOT_FLAG.LINES) !== 0) fail(`PARENT ${s.parent} is not a block image in use`)
    if (s.block !== root!.block || s.frames !== root!.frames || s.frameStride !== root!.frameStride || s.dtype !== root!.dtype) {
      fail('block, frames or dtype differ from its root')
    }
    if (s.strides.some((v, i) => i < root!.strides.length && v !== root!.strides[i])) fail('strides differ from its root')
    const offset = s.byteOffset - root!.byteOffset
    const [rowStride, colStride] = root!.strides
    if (root!.shape.length < 2 || offset < 0 || offset % colStride !== 0) fail(`offset ${offset} is not on a pixel of its root`)
    const y = Math.floor(offset / rowStride)
    const x = (offset % rowStride) / colStride
    if (!Number.isInteger(x) || y + s.shape[0] > root!.shape[0] || x + s.shape[1] > root!.shape[1]) fail('it reaches outside its root')
  }
}

/** No two roots share a byte of a block. */
function checkOverlaps (slots: CheckedSlot[], blocks: ReadonlyMap<number, number>): void {
  const byBlock = new Map<number, Array<[number, number, number]>>()
  const add = (block: number, start: number, end: number, slot: number): void => {
    let list = byBlock.get(block)
    if (list === undefined) byBlock.set(block, list = [])
    list.push([start, end, slot])
  }
  for (const s of slots) {
    if (s.parent !== -1) continue
    if (s.runs !== null) {
      const rowBytes = s.byteLength / s.shape[0]
      for (const [b, offset, rows] of s.runs) add(b, offset, offset + alignUp(rows * rowBytes), s.slot)
    } else {
      add(s.block, s.byteOffset, s.byteOffset + alignUp(s.frames > 1 ? s.frameStride * s.frames : s.byteLength), s.slot)
    }
  }
  for (const [block, list] of byBlock) {
    list.sort((a, b) => a[0] - b[0])
    for (let i = 1; i < list.length; i++) {
      if (list[i][0] < list[i - 1][1]) throw new TableRefused(`records ${list[i - 1][2]} and ${list[i][2]} overlap in block ${block}`)
    }
    const last = list[list.length - 1]
    if (last[1] > (blocks.get(block) ?? 0)) throw new TableRefused(`record ${last[2]} reaches past the end of block ${block}`)
  }
}

