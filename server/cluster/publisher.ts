/**
 * Writes this node's catalog changes to Redis: the node's catalog hash and the cluster's event stream, in
 * one pipeline per flush with every catalog write before the events (Redis runs one connection's commands
 * in order), so a node that sees an event finds the catalog at least as new. Not a MULTI: its
 * all-or-nothing adds nothing here (a flush that fails in part is sent again whole; each write is idempotent
 * but the event, which a reader may then see twice: events are at least once, and carry their generation),
 * and in bench:cluster runs alternated between the two, the event latency measured the same.
 *
 * Rate: the first change after a quiet period is flushed in the same event-loop turn (setImmediate: low
 * latency for sparse commits, and the changes of one turn share one pipeline); later ones wait until
 * `windowMs` after the previous flush, folding into one op per image meanwhile (see outbox.ts). One flush
 * in flight at a time: if Redis is slow, changes coalesce instead of piling up.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { CATALOG_TTL_FACTOR, catalogKey, EVENTS_KEY, EVENTS_MAXLEN } from './keys.js'
import { Outbox, type CatalogOp } from './outbox.js'
import type { RedisLink } from './redis-link.js'

/**
 * Stream entry fields: t type, n node, u node URL, i image id, g generation, d descriptor JSON. The URL
 * travels with every entry so a reader never has to look the node up (nor drop the event) first.
 */
export function entryFields (node: string, url: string, op: CatalogOp, json = op.type === 'deleted' ? '' : JSON.stringify(op.descriptor)): string[] {
  if (op.type === 'deleted') return ['t', 'deleted', 'n', node, 'u', url, 'i', op.id]
  return ['t', op.type, 'n', node, 'u', url, 'i', op.id, 'g', String(op.descriptor.generation), 'd', json]
}

export class CatalogPublisher {
  private readonly outbox: Outbox
  /** The pending flush: a timer inside the window, an immediate outside it. */
  private timer: { cancel: () => void } | null = null
  private flushing: Promise<void> | null = null
  private lastFlushAt = 0
  private stopped = false

  constructor (
    private readonly link: RedisLink,
    private readonly nodeId: string,
    private readonly url: string,
    private readonly windowMs: number,
    private readonly ttlMs: number,
    bound = 50_000,
  ) {
    this.outbox = new Outbox(bound)
  }

  /** Ops waiting (for tests and status). */
  get waiting (): number {
    return this.outbox.size
  }

  /** True when ops were dropped while Redis was away: the caller must republish the whole catalog. */
  takeOverflow (): boolean {
    const overflowed = this.outbox.overflowed
    this.outbox.overflowed = false
    return overflowed
  }

  offer (op: CatalogOp): void {
    if (this.stopped) return
    this.outbox.push(op)
    this.schedule()
  }

  /** Flush now if Redis is there (after a reconnect); otherwise nothing. */
  schedule (): void {
    if (this.stopped || this.timer !== null || this.flushing !== null || this.outbox.size === 0 || !this.link.ready) return
    const delay = this.lastFlushAt + this.windowMs - performance.now()
    const run = (): void => {
      this.timer = null
      void this.flush()
    }
    // Outside the window, flush in this event-loop turn's check phase: every change offered in this turn
    // goes in one pipeline, and nothing waits for a timer (Node's setTimeout(0) is at least 1 ms, plus the
    // timers phase of the next turn: about half of a commit's way to another node on loopback).
    if (delay <= 0) {
      const immediate = setImmediate(run)
      this.timer = { cancel: () => clearImmediate(immediate) }
    } else {
      const timeout = setTimeout(run, delay)
      this.timer = { cancel: () => clearTimeout(timeout) }
    }
  }

  /** Write everything waiting; resolves when done (or failed: the ops are put back for the next try). */
  async flush (): Promise<void> {
    if (this.flushing !== null) return await this.flushing
    const ops = this.outbox.take()
    if (ops.length === 0) return
    this.lastFlushAt = performance.now()
    this.flushing = this.write(ops).then(
      () => {},
      () => { if (!this.stopped) this.outbox.putBack(ops) },
    ).finally(() => {
      this.flushing = null
      this.schedule()
    })
    return await this.flushing
  }

  private async write (ops: CatalogOp[]): Promise<void> {
    const key = catalogKey(this.nodeId)
    const pipeline = this.link.commands.pipeline()
    // One serialisation per op, for the catalog and the stream entry alike.
    const json = ops.map((op) => op.type === 'deleted' ? '' : JSON.stringify(op.descriptor))
    ops.forEach((op, i) => {
      if (op.type === 'deleted') pipeline.hdel(key, op.id)
      else pipeline.hset(key, op.id, json[i])
    })
    pipeline.pexpire(key, CATALOG_TTL_FACTOR * this.ttlMs)
    ops.forEach((op, i) => pipeline.xadd(EVENTS_KEY, 'MAXLEN', '~', EVENTS_MAXLEN, '*', ...entryFields(this.nodeId, this.url, op, json[i])))
    const results = await pipeline.exec()
    const failed = results?.find(([err]) => err !== null)
    if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('pipeline aborted')
  }

  /**
   * Replace the node's catalog with `descriptors` (after Redis lost it: a restart, or a lapse). Ops still
   * waiting are flushed first, so their events go out and none of them can overwrite a newer descriptor.
   */
  async republish (descriptors: ImageDescriptor[]): Promise<void> {
    await this.flush()
    const key = catalogKey(this.nodeId)
    const multi = this.link.commands.multi().del(key)
    if (descriptors.length > 0) multi.hset(key, ...descriptors.flatMap((d) => [d.id, JSON.stringify(d)]))
    multi.pexpire(key, CATALOG_TTL_FACTOR * this.ttlMs)
    const results = await multi.exec()
    const failed = results?.find(([err]) => err !== null)
    if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('MULTI aborted')
  }

  stop (): void {
    this.stopped = true
    this.timer?.cancel()
    this.timer = null
  }
}
