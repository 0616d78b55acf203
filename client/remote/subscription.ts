/**
 * A subscription as an async iterator of events.
 *
 * Events are buffered between the socket and the consumer with the same policy the server applies:
 * `latest` replaces a waiting update of the same image (adding to its `skipped`), `all` keeps every event
 * up to `queue` and then fails with PXP_ERR_CONSUMER_OVERFLOW. So a consumer slower than the feed costs bounded
 * memory on this side too. `return()` (also `break` in `for await`) unsubscribes.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { EventMessage, EventType, Policy, Scope } from '../../protocol/messages.js'
import type { RemoteFrame } from './frames.js'

export interface RemoteEvent {
  type: EventType
  id: string
  generation: number
  descriptor: ImageDescriptor
  /** Updates of this image conflated into this one (policy 'latest'). */
  skipped: number
  /** With `data: true`, for created and updated events: the frame of this generation. */
  frame?: RemoteFrame
  /** Shorthands for `frame.data` and `frame.bytes`. */
  data?: TypedArray
  bytes?: Uint8Array
}

export interface SubscribeOptions {
  /** Only these images (they need not exist yet). Default: all images. */
  ids?: string[]
  /** Slow-consumer policy, on the server and in this client's buffer. Default 'latest'. */
  policy?: Policy
  /** Follow created/updated events with the frame of that generation. Default false. */
  data?: boolean
  /**
   * Policy 'all': events held, by the server and by this client, before the subscription fails
   * (PXP_ERR_SUBSCRIPTION_OVERFLOW on the server, PXP_ERR_CONSUMER_OVERFLOW here).
   */
  queue?: number
  /** 'cluster': also events of images other nodes own (without frames). Default: the client's `scope`, else 'local'. */
  scope?: Scope
}

export class RemoteSubscription implements AsyncIterableIterator<RemoteEvent> {
  private readonly buffered: RemoteEvent[] = []
  private waiting: { resolve: (r: IteratorResult<RemoteEvent>) => void, reject: (err: unknown) => void } | null = null
  private failure: PixelportError | null = null
  private done = false
  /** The last generation delivered of each image (deleted ones removed): what a reconnect catches up from. */
  private readonly seen = new Map<string, number>()

  /** @internal Created by RemoteClient.subscribe. */
  constructor (
    /** The server's subscription number (a new one after the client reconnected). */
    public sub: number,
    readonly policy: Policy,
    private readonly queue: number,
    private readonly unsubscribe: () => Promise<void>,
  ) {}

  /** @internal An event (with its frame, when the subscription has data) arrived. */
  push (message: EventMessage, frame?: RemoteFrame): void {
    if (this.done) return
    // The server counts what its own queue dropped; across a reconnect only this side knows the gap (an
    // event of the new connection can arrive before the catch-up), and generations go up by one a commit.
    const last = this.seen.get(message.id)
    const gap = message.type === 'updated' && last !== undefined ? message.generation - last - 1 : 0
    if (message.type === 'deleted') this.seen.delete(message.id)
    else this.seen.set(message.id, Math.max(message.generation, this.seen.get(message.id) ?? -1))
    const event: RemoteEvent = {
      type: message.type,
      id: message.id,
      generation: message.generation,
      descriptor: message.descriptor,
      skipped: Math.max(message.skipped, gap),
    }
    if (frame !== undefined) {
      event.frame = frame
      event.data = frame.data
      event.bytes = frame.bytes
    }
    if (this.waiting !== null) {
      const { resolve } = this.waiting
      this.waiting = null
      resolve({ value: event, done: false })
      return
    }
    if (this.policy === 'latest' && event.type === 'updated') {
      const last = this.buffered.findLast((e) => e.id === event.id)
      if (last !== undefined && last.type === 'updated') {
        event.skipped += last.skipped + 1
        this.buffered[this.buffered.lastIndexOf(last)] = event
        return
      }
    }
    if (this.policy === 'all' && this.buffered.length >= this.queue) {
      this.fail(pxpError('PXP_ERR_CONSUMER_OVERFLOW', `subscription ${this.sub}: the consumer left ${this.buffered.length} events unread`))
      void this.unsubscribe().catch(() => {})
      return
    }
    this.buffered.push(event)
  }

  /** @internal Images this subscription has delivered and not seen deleted, with their last generation. */
  get delivered (): ReadonlyMap<string, number> {
    return this.seen
  }

  /**
   * @internal After a reconnect: the current state of an image, delivered unless an event as new arrived
   * already. `skipped` counts the generations missed while the connection was down.
   */
  catchUp (message: EventMessage, frame?: RemoteFrame): void {
    const last = this.seen.get(message.id)
    if (message.type === 'deleted' ? last === undefined : (last ?? -1) >= message.generation) return
    this.push({ ...message, skipped: message.type === 'deleted' || last === undefined ? 0 : Math.max(0, message.generation - last - 1) }, frame)
  }

  /** @internal The subscription ended with an error (connection closed, server queue overflow). */
  fail (err: PixelportError): void {
    if (this.done) return
    this.failure = err
    this.done = true
    this.buffered.length = 0
    if (this.waiting !== null) {
      const { reject } = this.waiting
      this.waiting = null
      reject(err)
    }
  }

  async next (): Promise<IteratorResult<RemoteEvent>> {
    const event = this.buffered.shift()
    if (event !== undefined) return { value: event, done: false }
    if (this.failure !== null) {
      const err = this.failure
      // Report the failure once; afterwards the iterator is simply finished.
      this.failure = null
      throw err
    }
    if (this.done) return { value: undefined, done: true }
    if (this.waiting !== null) throw pxpError('PXP_ERR_BAD_REQUEST', 'next() called again before the previous call resolved')
    return await new Promise((resolve, reject) => { this.waiting = { resolve, reject } })
  }

  /** Unsubscribe and finish the iterator. Idempotent. */
  async return (): Promise<IteratorResult<RemoteEvent>> {
    if (!this.done) {
      this.done = true
      this.buffered.length = 0
      if (this.waiting !== null) {
        const { resolve } = this.waiting
        this.waiting = null
        resolve({ value: undefined, done: true })
      }
      await this.unsubscribe()
    }
    return { value: undefined, done: true }
  }

  /** Same as return(): stop receiving events. */
  async close (): Promise<void> {
    await this.return()
  }

  [Symbol.asyncIterator] (): AsyncIterableIterator<RemoteEvent> {
    return this
  }
}
