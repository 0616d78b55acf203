/**
 * One subscription: store events for some images, delivered at the pace the client reads.
 *
 * Events wait in a per-subscription queue and go out only while the connection's send buffer is below
 * highWaterMark. What a slow client costs depends on its policy:
 * - `latest`: an update replaces the update of the same image still waiting (its `skipped` counts the
 *   ones replaced); an image created and deleted before the client heard of it vanishes from the queue.
 *   With `data: true` the frame is taken when the event is sent, so it is always the newest generation.
 *   Such a queue holds at most a few entries per image and never overflows on slowness alone.
 * - `all`: every event is kept, up to the subscription's `queue` bound; past it the connection is closed
 *   with PXP_ERR_SUBSCRIPTION_OVERFLOW (4508). With `data: true` each waiting update holds a snapshot of its
 *   generation, taken when the event happened (bounded by the queue and the snapshot budget).
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { isPixelportError, pxpError, type PixelportError } from '../../protocol/errors.js'
import type { EventMessage, EventType, Policy, Scope } from '../../protocol/messages.js'
import type { ServerContext } from '../context.js'
import type { Snapshot } from '../store/snapshots.js'
import { snapshotFrame } from './frames.js'
import type { Outbound } from './outbound.js'
import { errorReply } from './replies.js'
import { sendFrame, type StreamLane } from './streams.js'

export interface SubscriptionOptions {
  /** Only these ids, or every image when null. */
  ids: ReadonlySet<string> | null
  policy: Policy
  data: boolean
  /** Bound of the queue for policy 'all'. */
  queue: number
  /** 'cluster': other nodes' events too (offered with `remote`; they never carry frames). Default 'local'. */
  scope?: Scope
}

/** What a subscription needs from its connection. */
export interface SubscriptionHost {
  readonly ctx: ServerContext
  readonly out: Outbound
  readonly lane: StreamLane
  readonly chunkSize: number
  /** The subscription cannot keep its promise (an 'all' queue overflowed): end the connection. */
  fail (err: PixelportError, sub: number): void
}

interface Entry {
  type: EventType
  id: string
  descriptor: ImageDescriptor
  skipped: number
  /** Policy 'all' with data: the snapshot taken when the event happened. */
  snapshot: Promise<Snapshot> | null
  /** An image another node owns: the event goes out without a frame (the pixels are not here). */
  remote: boolean
}

export class Subscription {
  private queue: Entry[] = []
  /** Policy 'latest': the generation last sent per image, so a late duplicate event is not sent again. */
  private readonly lastSent = new Map<string, number>()
  private pumping = false
  private closed = false
  /** Hard bound for 'latest' (only reachable by create/delete churn of thousands of images). */
  private readonly latestBound: number

  constructor (readonly sub: number, private readonly host: SubscriptionHost, readonly options: SubscriptionOptions) {
    this.latestBound = options.queue + 3 * host.ctx.options.maxImages
  }

  /** Events waiting to be sent. */
  get pending (): number {
    return this.queue.length
  }

  /** A store event; called synchronously from the store's emit, so it does O(1) work (or starts a copy). */
  offer (type: EventType, descriptor: ImageDescriptor, remote = false): void {
    if (this.closed || (this.options.ids !== null && !this.options.ids.has(descriptor.id))) return
    const cluster = this.options.scope === 'cluster' ? this.host.ctx.cluster : null
    if (remote && cluster == null) return
    // Cluster scope: every descriptor names its owner, this node's included.
    if (!remote && cluster != null) descriptor = cluster.own(descriptor)
    if (this.options.policy === 'latest') this.offerLatest(type, descriptor, remote)
    else if (!this.offerAll(type, descriptor, remote)) return
    void this.pump()
  }

  /** Stop: nothing more is sent, and every snapshot still held is released. */
  close (): void {
    if (this.closed) return
    this.closed = true
    for (const entry of this.queue.splice(0)) releaseLater(entry.snapshot)
  }

  private offerLatest (type: EventType, descriptor: ImageDescriptor, remote: boolean): void {
    const id = descriptor.id
    if (type === 'updated') {
      const last = this.lastEntryFor(id)
      if (last !== undefined && last.type === 'updated' && last.remote === remote) {
        last.descriptor = descriptor
        last.skipped++
        return
      }
    } else if (type === 'deleted') {
      // Everything waiting about this image is moot; if the client never heard it was created, it need
      // not hear of the deletion either.
      const created = this.queue.findLastIndex((e) => e.id === id && e.type === 'created')
      const from = created >= 0 ? created : 0
      this.queue = [...this.queue.slice(0, from), ...this.queue.slice(from).filter((e) => e.id !== id || (e.type !== 'updated' && e.type !== 'created'))]
      if (created >= 0) return
    }
    if (this.queue.length >= this.latestBound) {
      this.host.fail(pxpError('PXP_ERR_SUBSCRIPTION_OVERFLOW', `subscription ${this.sub} has ${this.queue.length} events waiting`), this.sub)
      return
    }
    this.queue.push({ type, id, descriptor, skipped: 0, snapshot: null, remote })
  }

  private offerAll (type: EventType, descriptor: ImageDescriptor, remote: boolean): boolean {
    if (this.queue.length >= this.options.queue) {
      this.host.fail(pxpError('PXP_ERR_SUBSCRIPTION_OVERFLOW', `subscription ${this.sub} (policy "all") has ${this.queue.length} events waiting, its queue bound`), this.sub)
      return false
    }
    let snapshot: Promise<Snapshot> | null = null
    if (this.options.data && type !== 'deleted' && !remote) {
      snapshot = this.host.ctx.snapshots.acquire(descriptor.id)
      // Handled when delivered; never an unhandled rejection meanwhile.
      snapshot.catch(() => {})
    }
    this.queue.push({ type, id: descriptor.id, descriptor, skipped: 0, snapshot, remote })
    return true
  }

  private lastEntryFor (id: string): Entry | undefined {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].id === id) return this.queue[i]
    return undefined
  }

  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (!this.closed && this.queue.length > 0) {
        if (!await this.host.out.writable() || this.closed) return
        const entry = this.queue.shift()
        if (entry !== undefined) await this.deliver(entry)
      }
    } finally {
      this.pumping = false
    }
  }

  private async deliver (entry: Entry): Promise<void> {
    const { out } = this.host
    const latest = this.options.policy === 'latest'
    if (!this.options.data || entry.type === 'deleted' || entry.remote) {
      let skipped = 0
      if (latest) {
        if (entry.type === 'deleted') this.lastSent.delete(entry.id)
        else {
          skipped = this.skippedBefore(entry, entry.descriptor.generation)
          if (skipped < 0) return
        }
      }
      out.send(this.event(entry, entry.descriptor, skipped))
      return
    }
    let snapshot: Snapshot
    try {
      snapshot = await (entry.snapshot ?? this.host.ctx.snapshots.acquire(entry.id))
    } catch (err) {
      // Deleted meanwhile: its 'deleted' event is on its way, there is no frame to send.
      if (isPixelportError(err) && err.code === 'PXP_ERR_NOT_FOUND') return
      if (!latest) this.host.fail(err as PixelportError, this.sub)
      else out.send(errorReply(null, err, { sub: this.sub }))
      return
    }
    const skipped = latest ? this.skippedBefore(entry, snapshot.generation) : 0
    if (this.closed || skipped < 0) {
      snapshot.release()
      return
    }
    out.send(this.event(entry, snapshot.descriptor, skipped))
    await this.host.lane.enqueue(null, (stream, abort) =>
      sendFrame(out, stream, { sub: this.sub }, snapshotFrame(snapshot), this.host.chunkSize, abort, this.host.ctx.metrics).then(() => {}),
    ).catch(() => snapshot.release())
  }

  /**
   * Policy 'latest', for an event about to be sent with `generation`: how many generations of the image
   * the client will never see between the previous event it got and this one; -1 when this generation was
   * already sent (a late duplicate: drop it). Remembers `generation` as sent.
   *
   * Counted from generations rather than from conflated events, so the count stays exact when the frame
   * sent is newer than the event that asked for it, and when one event announced several commits.
   */
  private skippedBefore (entry: Entry, generation: number): number {
    const last = this.lastSent.get(entry.id)
    if (entry.type === 'updated' && last !== undefined && generation <= last) return -1
    this.lastSent.set(entry.id, generation)
    if (entry.type !== 'updated') return 0
    if (last !== undefined) return generation - last - 1
    // The first update this subscription sends for an image: only the conflated events are known.
    return entry.skipped + Math.max(0, generation - entry.descriptor.generation)
  }

  private event (entry: Entry, descriptor: ImageDescriptor, skipped: number): EventMessage {
    return {
      op: 'event',
      sub: this.sub,
      type: entry.type,
      id: entry.id,
      generation: descriptor.generation,
      descriptor,
      skipped,
    }
  }
}

function releaseLater (snapshot: Promise<Snapshot> | null): void {
  snapshot?.then((s) => s.release(), () => {})
}
