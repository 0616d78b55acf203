/**
 * Catalog changes waiting to be written to Redis, coalesced per image and never reordered.
 *
 * A 30 fps writer commits 30 generations a second; Redis only needs the newest one the other nodes have
 * not seen yet. An `updated` whose image still has an op waiting replaces that op's descriptor in place
 * (a waiting `created` stays a `created`, now with the newer descriptor), so the queue holds at most one
 * update per image and the relative order of ops is kept: created → updated → deleted of one image can
 * never come out as deleted → updated.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'

export type CatalogOp =
  | { type: 'created' | 'updated', id: string, descriptor: ImageDescriptor, coalesced: number }
  | { type: 'deleted', id: string }

export class Outbox {
  private ops: CatalogOp[] = []
  /** The last op waiting per image: where a new update folds in. */
  private lastById = new Map<string, CatalogOp>()
  /** Set when ops were dropped (the bound was hit): the catalog must be republished whole. */
  overflowed = false

  constructor (private readonly bound: number) {}

  get size (): number {
    return this.ops.length
  }

  push (op: CatalogOp): void {
    if (op.type === 'updated') {
      const waiting = this.lastById.get(op.id)
      if (waiting !== undefined && waiting.type !== 'deleted') {
        waiting.descriptor = op.descriptor
        waiting.coalesced++
        return
      }
    }
    if (this.ops.length >= this.bound) {
      // Only create/delete churn while Redis is away gets here (updates fold in). Events are lost; the
      // catalog is made right by a full republish once Redis is back.
      this.ops = []
      this.lastById.clear()
      this.overflowed = true
    }
    this.ops.push(op)
    this.lastById.set(op.id, op)
  }

  /** Everything waiting, oldest first; the outbox is empty afterwards. */
  take (): CatalogOp[] {
    const ops = this.ops
    this.ops = []
    this.lastById.clear()
    return ops
  }

  /** A write failed: put its ops back in front of whatever arrived meanwhile, order kept. */
  putBack (ops: CatalogOp[]): void {
    this.ops = ops.concat(this.ops)
    this.lastById.clear()
    for (const op of this.ops) this.lastById.set(op.id, op)
  }
}
