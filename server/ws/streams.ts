/**
 * Streaming frames to one connection: a `frame` header, `chunk` messages sent as fast as the client reads
 * them (never past highWaterMark), then an `end`.
 *
 * Streams on a connection run one at a time, in request order (the StreamLane): a connection holds at most
 * one frame's bytes at a time, queued gets hold nothing yet, and the frame a get receives is the
 * generation current when its stream starts. Control messages (replies, events) are not held back by a
 * stream and may arrive between its chunks.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { chunkCount, type RequestId } from '../../protocol/messages.js'
import type { TransportMetrics } from '../metrics/metrics.js'
import type { FrameSource } from './frames.js'
import type { Outbound } from './outbound.js'
import { errorReply } from './replies.js'

/** Who a stream answers: a get (`req`) or a subscription (`sub`). */
export interface StreamTarget {
  req?: RequestId
  sub?: number
}

/** Set `reason` to stop a stream before its next chunk. */
export interface StreamAbort {
  reason: PixelportError | null
  /** Set by sendFrame once the `frame` header is out: the client knows the stream's number from then on. */
  announced?: boolean
}

/**
 * Send `source` as stream number `stream`. Resolves true when the last message was handed to the socket
 * (not when the client has read it), false when the stream ended early (the client got an `error` with
 * this stream's number, unless the connection was gone). The source is released once the socket no longer
 * references its bytes: after the last chunk's write completes, or when the connection closes.
 */
export async function sendFrame (
  out: Outbound, stream: number, target: StreamTarget, source: FrameSource, chunkSize: number, abort: StreamAbort,
  metrics?: TransportMetrics,
): Promise<boolean> {
  let released = false
  let forget = (): void => {}
  const release = (): void => {
    if (released) return
    released = true
    forget()
    source.release()
  }
  forget = out.onClose(release)
  let pendingWrites = 0
  let finished = false
  const written = (): void => {
    if (--pendingWrites === 0 && finished) release()
  }
  try {
    const { bytes } = source
    const total = bytes.byteLength
    if (!out.open) throw pxpError('PXP_ERR_CLOSED', 'connection')
    out.send({
      op: 'frame',
      ...target,
      stream,
      descriptor: source.descriptor,
      generation: source.generation,
      region: source.region,
      shape: source.shape,
      typestr: source.descriptor.typestr,
      byteLength: total,
      chunks: chunkCount(total, chunkSize),
    })
    abort.announced = true
    for (let offset = 0; offset < total; offset += chunkSize) {
      if (!await out.writable()) throw pxpError('PXP_ERR_CLOSED', 'connection')
      if (abort.reason !== null) throw abort.reason
      pendingWrites++
      out.sendChunk(stream, offset, bytes.subarray(offset, Math.min(total, offset + chunkSize)), written)
    }
    out.send({ op: 'end', stream, ...target, byteLength: total })
    metrics?.addBytesStreamed('ws', total)
    return true
  } catch (err) {
    // The client learns which stream ended early; nothing is sent on a closed connection.
    out.send(errorReply(target.req ?? null, err, target.sub !== undefined ? { stream, sub: target.sub } : { stream }))
    return false
  } finally {
    finished = true
    if (pendingWrites === 0) release()
  }
}

interface Job {
  /** The get's request id (cancel finds it by this), or null for a subscription's frame. */
  readonly req: RequestId | null
  readonly abort: StreamAbort
  readonly run: (stream: number, abort: StreamAbort) => Promise<void>
  readonly done: (err?: unknown) => void
}

/** Runs one connection's streams one after another, in order. */
export class StreamLane {
  private readonly queue: Job[] = []
  private active: Job | null = null
  private activeStream = 0
  private nextStream = 1
  private closed = false

  /** Gets queued or streaming (subscription frames are not counted: each subscription has at most one). */
  get gets (): number {
    let n = this.active !== null && this.active.req !== null ? 1 : 0
    for (const job of this.queue) if (job.req !== null) n++
    return n
  }

  /** The gets queued or streaming, the active one first, with its stream number once its frame is out. */
  inFlight (): Array<{ req: RequestId, stream: number | null }> {
    const gets: Array<{ req: RequestId, stream: number | null }> = []
    if (this.active !== null && this.active.req !== null) {
      gets.push({ req: this.active.req, stream: this.active.abort.announced === true ? this.activeStream : null })
    }
    for (const job of this.queue) if (job.req !== null) gets.push({ req: job.req, stream: null })
    return gets
  }

  /** True when a get with this request id is queued or streaming. */
  has (req: RequestId): boolean {
    return this.active?.req === req || this.queue.some((j) => j.req === req)
  }

  /**
   * Queue `run`; it is called with a fresh stream number when its turn comes. Resolves when it finished,
   * rejects with what it threw (or PXP_ERR_ABORTED / PXP_ERR_CLOSED if it never ran).
   */
  enqueue (req: RequestId | null, run: (stream: number, abort: StreamAbort) => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(pxpError('PXP_ERR_CLOSED', 'connection'))
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ req, run, abort: { reason: null }, done: (err) => (err === undefined ? resolve() : reject(err)) })
      this.pump()
    })
  }

  /** Stop the get `req`: dropped if queued, stopped before its next chunk if streaming. */
  cancel (req: RequestId, reason: PixelportError): boolean {
    const i = this.queue.findIndex((j) => j.req === req)
    if (i >= 0) {
      const [job] = this.queue.splice(i, 1)
      job.done(reason)
      return true
    }
    if (this.active !== null && this.active.req === req) {
      this.active.abort.reason = reason
      return true
    }
    return false
  }

  /** Drop everything queued and stop the active stream (the connection closed). */
  close (): void {
    if (this.closed) return
    this.closed = true
    const reason = pxpError('PXP_ERR_CLOSED', 'connection')
    if (this.active !== null) this.active.abort.reason = reason
    for (const job of this.queue.splice(0)) job.done(reason)
  }

  private pump (): void {
    if (this.active !== null) return
    const job = this.queue.shift()
    if (job === undefined) return
    this.active = job
    const stream = this.nextStream
    this.activeStream = stream
    this.nextStream = this.nextStream >= 0xffffffff ? 1 : this.nextStream + 1
    job.run(stream, job.abort).then(() => job.done(), (err: unknown) => job.done(err ?? new Error('stream failed'))).finally(() => {
      this.active = null
      this.pump()
    })
  }
}
