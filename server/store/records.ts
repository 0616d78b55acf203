/**
 * The store's catalog: one record per image and view, by id and by image-table slot, the ids promised to
 * uploads in progress, and the descriptors clients see. A record turns live here (`publish`, `restore`),
 * stops being visible (`remove`) and gives back its slot and memory once nobody holds it (`reclaim`).
 *
 * Nothing here takes a lock or emits an event: the façade (image-store.ts) decides when.
 */
import type { ImageDescriptor, ViewInfo } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { SLOT, SLOT_FLAG } from '../../protocol/layout.js'
import type { ImageSpec } from '../../protocol/spec.js'
import type { Allocation, Arena, RowRun } from '../memory/arena.js'
import type { StoreMeta } from '../memory/shm-table-check.js'
import { describeRecord } from './descriptors.js'
import type { ImageTable } from './image-table.js'
import type { Pieces } from './pixels.js'
import type { Placement, Shape } from './placement.js'

/**
 * Pixels that belong to someone else, e.g. a cluster replica of another node's image (server/cluster/
 * replicas.ts owns that bookkeeping). The store keeps such an image read-only for every client, marks it
 * REPLICA in the image table (a restarted server drops it; workers read it as a copy), and adds what
 * `describe()` returns to the descriptors of the image and its views. Only `store.refreshFromOrigin()`
 * changes its pixels.
 */
export interface ImageOrigin {
  /** Read on every descriptor, so changes (a refresh, staleness) show at once. */
  describe (): Pick<ImageDescriptor, 'owner' | 'sourceGeneration' | 'stale'>
}

export interface ImageRecord {
  readonly id: string
  readonly slot: number
  readonly spec: ImageSpec
  readonly readonly: boolean
  readonly layout: 'block' | 'lines'
  /** Memory this record owns (null for views). */
  readonly allocation: Allocation | null
  readonly runs: readonly RowRun[] | null
  /** First byte in its block (block layout and views). */
  readonly block: number
  readonly byteOffset: number
  readonly strides: readonly number[]
  readonly parent: ImageRecord | null
  readonly view: ViewInfo | null
  readonly children: Set<ImageRecord>
  /** Frame buffers (1 for plain images; views share their root's). */
  readonly frames: number
  readonly frameStride: number
  /** The image's bytes in C order, per frame buffer. */
  readonly pieces: readonly Pieces[]
  /** Set on an image whose pixels come from elsewhere (roots only; views show their root's). */
  readonly origin?: ImageOrigin
  deleted: boolean
  /** The store's use clock at the last read or commit it saw (eviction order). */
  lastUsed: number
}

/** What a new record is made of; the catalog adds its slot and bookkeeping. */
export type RecordInit = Omit<ImageRecord, 'slot' | 'children' | 'deleted' | 'lastUsed'>

/** A record found in an adopted table (server/store/adopt.ts): already live there, its memory taken. */
export interface RestoredRecord {
  id: string
  slot: number
  spec: ImageSpec
  readonly: boolean
  layout: 'block' | 'lines'
  allocation: Allocation | null
  runs: RowRun[] | null
  block: number
  byteOffset: number
  strides: readonly number[]
  frames: number
  frameStride: number
  parentSlot: number | null
  view: ViewInfo | null
}

/** The root image whose seqlock, generation, write lock and pins a record (a view) uses. */
/** The allocations a placement (or a record) gives back to the arena when it goes. */
export function freesOf (placement: { readonly allocation: Allocation | null, readonly runs: readonly RowRun[] | null }): Allocation[] {
  return placement.allocation !== null ? [placement.allocation] : [...(placement.runs ?? [])]
}

export function rootOf (record: ImageRecord): ImageRecord {
  return record.parent ?? record
}

export class Records {
  private readonly byId = new Map<string, ImageRecord>()
  private readonly bySlot = new Map<number, ImageRecord>()
  /** Ids promised to uploads in progress: taken, but not yet visible. */
  readonly pendingIds = new Set<string>()
  /** Rows of line-based images by slot: the table has no room for them (saved by the provider, see adopt.ts). */
  private readonly linesMeta: StoreMeta['lines'] = {}

  /** @param onFreed told of every slot given back (its per-slot state elsewhere can go) */
  constructor (
    private readonly table: ImageTable,
    private readonly arena: Arena,
    private readonly attachSocket: string | null,
    private readonly onFreed: (slot: number) => void,
  ) {}

  get size (): number { return this.byId.size }
  /** Records by slot, deleted ones still held by leases included. */
  get slotted (): number { return this.bySlot.size }

  find (id: string): ImageRecord | undefined { return this.byId.get(id) }

  get (id: string): ImageRecord {
    const record = typeof id === 'string' ? this.byId.get(id) : undefined
    if (record === undefined) throw pxpError('PXP_ERR_NOT_FOUND', String(id))
    return record
  }

  atSlot (slot: number): ImageRecord | undefined { return this.bySlot.get(slot) }

  live (): IterableIterator<ImageRecord> { return this.byId.values() }
  ids (): string[] { return [...this.byId.keys()] }

  /** Live root images (views share their root's generation). */
  * liveRoots (): Iterable<ImageRecord> {
    for (const record of this.bySlot.values()) if (record.parent === null && !record.deleted) yield record
  }

  /** Slots of deleted records still waiting for leases. */
  retiredSlots (): number[] {
    return [...this.bySlot.values()].filter((r) => r.deleted).map((r) => r.slot)
  }

  /** Throw PXP_ERR_ALREADY_EXISTS when `id` is live or promised to an upload. */
  assertIdFree (id: string): void {
    if (this.byId.has(id) || this.pendingIds.has(id)) throw pxpError('PXP_ERR_ALREADY_EXISTS', id)
  }

  newId (): string {
    let id: string
    do id = 'img-' + Math.random().toString(36).slice(2, 10)
    while (this.byId.has(id) || this.pendingIds.has(id))
    return id
  }

  bytesAt (block: number, offset: number, length: number): Uint8Array {
    return new Uint8Array(this.arena.block(block)!.memory.buffer, offset, length)
  }

  /** The pieces of a new image in the memory `placement` holds: one list per frame buffer. */
  piecesOf (placement: Placement, spec: ImageSpec, shape: Shape): Pieces[] {
    const { allocation, runs } = placement
    if (allocation === null) return [runs!.map((r) => this.bytesAt(r.block, r.offset, r.rows * spec.rowBytes))]
    return Array.from({ length: shape.frames }, (_, f) => [this.bytesAt(allocation.block, allocation.offset + f * shape.frameStride, spec.byteLength)])
  }

  /** The pieces of a view at `byteOffset` in its root's block: one per frame, one piece per row unless rows are contiguous. */
  viewPieces (root: { block: number, frames: number, frameStride: number, strides: readonly number[], spec: ImageSpec }, byteOffset: number, spec: ImageSpec): Pieces[] {
    const contiguous = spec.height === 1 || spec.width === root.spec.width
    return Array.from({ length: root.frames }, (_, f) => {
      const start = byteOffset + f * root.frameStride
      if (contiguous) return [this.bytesAt(root.block, start, spec.byteLength)]
      return Array.from({ length: spec.height }, (_, row) => this.bytesAt(root.block, start + row * root.strides[0], spec.rowBytes))
    })
  }

  /** Take a slot, write the record into the image table and make it live. */
  publish (init: RecordInit, lastUsed: number): ImageRecord {
    if (this.byId.has(init.id)) throw pxpError('PXP_ERR_ALREADY_EXISTS', init.id)
    const slot = this.table.allocSlot()
    const record: ImageRecord = { ...init, slot, children: new Set(), deleted: false, lastUsed }
    if (record.runs !== null) {
      // Saved before the record turns live: a crash in between leaves rows for a record that is not live.
      this.linesMeta[String(slot)] = { epoch: this.table.word(slot, SLOT.EPOCH) + 1, id: record.id, runs: record.runs.map((r) => [r.block, r.offset, r.rows]) }
      try {
        this.saveMeta()
      } catch (err) {
        delete this.linesMeta[String(slot)]
        this.table.unreserve(slot)
        throw err
      }
    }
    let flags = 0
    if (record.readonly) flags |= SLOT_FLAG.READONLY
    if (record.parent !== null) flags |= SLOT_FLAG.VIEW
    if (record.layout === 'lines') flags |= SLOT_FLAG.LINES
    if (rootOf(record).origin !== undefined) flags |= SLOT_FLAG.REPLICA
    this.table.publish(slot, {
      id: record.id,
      flags,
      dtype: record.spec.dtype.code,
      mode: record.spec.mode?.code ?? 0,
      shape: record.spec.shape,
      strides: record.strides,
      block: record.block,
      byteOffset: record.byteOffset,
      byteLength: record.spec.byteLength,
      parent: record.parent?.slot ?? -1,
      frames: record.frames,
      frameStride: record.frameStride,
    })
    this.add(record)
    return record
  }

  /** Register a record found in an adopted table. */
  restore (r: RestoredRecord, lastUsed: number): ImageRecord {
    const parent = r.parentSlot === null ? null : this.bySlot.get(r.parentSlot)!
    const { spec } = r
    let pieces: Pieces[]
    if (r.runs !== null) {
      pieces = [r.runs.map((run) => this.bytesAt(run.block, run.offset, run.rows * spec.rowBytes))]
      this.linesMeta[String(r.slot)] = { epoch: this.table.word(r.slot, SLOT.EPOCH), id: r.id, runs: r.runs.map((run) => [run.block, run.offset, run.rows]) }
    } else if (parent === null) {
      pieces = Array.from({ length: r.frames }, (_, f) => [this.bytesAt(r.block, r.byteOffset + f * r.frameStride, spec.byteLength)])
    } else {
      pieces = this.viewPieces({ ...parent, block: r.block, frames: r.frames, frameStride: r.frameStride, strides: r.strides }, r.byteOffset, spec)
    }
    const { parentSlot: _, ...rest } = r
    const record: ImageRecord = { ...rest, parent, pieces, children: new Set(), deleted: false, lastUsed }
    this.add(record)
    return record
  }

  /** No longer visible (deleted or evicted); its slot and memory stay until `reclaim`. */
  remove (record: ImageRecord): void {
    record.deleted = true
    this.byId.delete(record.id)
    this.table.retire(record.slot)
  }

  /** Give back the slot and memory of a removed record nobody holds any more (then its parent's, if removed too). */
  reclaim (record: ImageRecord): void {
    if (!record.deleted) return
    if (this.table.leases(record.slot) > 0 || record.children.size > 0) return
    // A writer that died holding the lock was recovered by the bridge before leases could reach 0.
    this.bySlot.delete(record.slot)
    this.onFreed(record.slot)
    this.table.free(record.slot)
    for (const a of freesOf(record)) this.arena.free(a)
    if (record.runs !== null) {
      delete this.linesMeta[String(record.slot)]
      // The entry names an epoch the slot no longer has, so a failed save here is harmless.
      try { this.saveMeta() } catch {}
    }
    const parent = record.parent
    if (parent !== null) {
      parent.children.delete(record)
      this.reclaim(parent)
    }
  }

  clear (): void {
    this.byId.clear()
    this.bySlot.clear()
  }

  /** Save the rows of line-based images where the next server can find them (shared memory only). */
  saveMeta (): void {
    this.arena.provider.saveMeta?.({ version: 1, lines: this.linesMeta })
  }

  describe (record: ImageRecord): ImageDescriptor {
    return describeRecord(record, this.table, this.arena, this.attachSocket)
  }

  private add (record: ImageRecord): void {
    this.byId.set(record.id, record)
    this.bySlot.set(record.slot, record)
    record.parent?.children.add(record)
  }
}
