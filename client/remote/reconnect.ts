/**
 * Reconnecting a RemoteClient whose connection was lost (a server restart): attempts with exponential
 * backoff and jitter until one succeeds or the client closes, and, once back, the catch-up of each
 * subscription: the current generation of every image it watched, so a subscriber ends up where it would
 * have been, with `skipped` counting the generations it missed.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { PixelportError } from '../../protocol/errors.js'
import type { SubscribeMessage } from '../../protocol/messages.js'
import type { RemoteFrame } from './frames.js'
import type { Session } from './session.js'
import type { RemoteSubscription } from './subscription.js'

export interface ReconnectOptions {
  /** Wait before the first attempt, in ms (doubled after each failure). Default 100. */
  initialDelay?: number
  /** Longest wait between attempts, in ms. Default 5000. */
  maxDelay?: number
}

export class Reconnector {
  private timer: ReturnType<typeof setTimeout> | null = null
  private running = false
  private stopped = false
  /** Connections opened again so far. */
  reconnects = 0

  constructor (
    private readonly options: ReconnectOptions,
    private readonly open: () => Promise<Session>,
    private readonly resume: (session: Session) => Promise<void>,
  ) {}

  /** Begin attempts (no-op while they run already or after stop()). */
  start (): void {
    if (this.running || this.stopped) return
    this.running = true
    this.attempt(this.options.initialDelay ?? 100)
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private attempt (delay: number): void {
    // Jitter: clients of one restarted server do not all come back in the same millisecond.
    this.timer = setTimeout(() => {
      this.timer = null
      this.open().then(async (session) => {
        this.running = false
        if (this.stopped) {
          session.close()
          return
        }
        this.reconnects++
        await this.resume(session)
      }, () => {
        if (!this.stopped) this.attempt(Math.min(delay * 2, this.options.maxDelay ?? 5000))
      })
    }, delay * (0.75 + Math.random() * 0.5))
  }

  /**
   * Deliver the current state of every image `subscription` watches: the ids it names, or (for all
   * images) those listed now plus those it had heard of. Deleted meanwhile: a `deleted` event.
   */
  async catchUp (session: Session, subscription: RemoteSubscription, message: Omit<SubscribeMessage, 'req'>, data: boolean): Promise<void> {
    let ids = message.ids
    if (ids === undefined) {
      const listed = new Set(subscription.delivered.keys())
      for (let cursor: string | undefined; ;) {
        const page = await session.request({ op: 'list', req: session.newReq(), ...(message.scope !== undefined ? { scope: message.scope } : {}), ...(cursor !== undefined ? { cursor } : {}) }, 'images')
        for (const d of page.images) listed.add(d.id)
        if (page.next == null) break
        cursor = page.next
      }
      ids = [...listed]
    }
    for (const id of ids) {
      let descriptor: ImageDescriptor
      let frame: RemoteFrame | undefined
      try {
        if (data && message.scope !== 'cluster') {
          frame = (await session.request({ op: 'get', req: session.newReq(), id }, 'end')).frame
          descriptor = frame.descriptor
        } else {
          descriptor = (await session.request({ op: 'describe', req: session.newReq(), id }, 'descriptor')).descriptor
        }
      } catch (err) {
        if ((err as PixelportError).code !== 'PXP_ERR_NOT_FOUND') throw err
        subscription.catchUp({ op: 'event', sub: subscription.sub, type: 'deleted', id, generation: 0, descriptor: { id } as ImageDescriptor, skipped: 0 })
        continue
      }
      const type = subscription.delivered.has(id) ? 'updated' : 'created'
      subscription.catchUp({ op: 'event', sub: subscription.sub, type, id, generation: descriptor.generation, descriptor, skipped: 0 }, frame)
    }
  }
}
