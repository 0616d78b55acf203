/**
 * The frame buffers of a frame-buffered image (created with `frames` ≥ 2), iceoryx-style: readers pin the
 * published buffer, writers loan another one no reader holds and publish it by swapping the front index.
 *
 * Every pin and loan is also counted in the client's claims, so the server can give them back if the client
 * dies holding them.
 */
import type { TypedArray } from '../../protocol/dtypes.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM, claimBase, SLOT, slotBase } from '../../protocol/layout.js'
import { cancelLoan, loanFrame, pinFront, publishFrame, unlock, unpin } from '../../protocol/sync.js'
import { type Frame, type ImageHost, type Loan, lockImage } from './image-host.js'

export class FrameBuffers {
  private readonly words: Int32Array

  /**
   * `control`: the slot holding the front index and pins (the root's, for a view); `assertLeased` throws
   * once the handle is released, so a loop waiting for a buffer stops then.
   */
  constructor (
    private readonly host: ImageHost,
    private readonly control: number,
    private readonly id: string,
    private readonly assertLeased: () => void,
  ) {
    this.words = host.words
  }

  /** The published frame buffer (without pinning it). */
  get front (): number {
    return Atomics.load(this.words, slotBase(this.control) + SLOT.FRONT)
  }

  /** Pin the published frame buffer: writers leave it alone until unpin(). */
  pin (): { frame: number, generation: number } {
    for (;;) {
      const pinned = pinFront(this.words, this.control)
      if (pinned !== null) {
        Atomics.add(this.host.claims, this.claimAt(pinned.frame), 1)
        return pinned
      }
      this.assertLeased()
    }
  }

  unpin (frame: number): void {
    Atomics.sub(this.host.claims, this.claimAt(frame), 1)
    unpin(this.words, this.control, frame)
  }

  /** Pin the published frame buffer until the Frame is released. */
  hold (data: (frame: number) => TypedArray): Frame {
    const { frame, generation } = this.pin()
    let released = false
    return {
      data: data(frame),
      generation,
      copied: false,
      release: () => {
        if (released) return
        released = true
        this.unpin(frame)
      },
    }
  }

  /** Loan a frame buffer no reader holds, waiting up to `timeout` ms for one (PXP_ERR_LOCK_TIMEOUT). */
  async loan (timeout: number): Promise<number> {
    const deadline = performance.now() + timeout
    const generationAt = slotBase(this.control) + SLOT.GENERATION
    for (;;) {
      this.assertLeased()
      const frame = loanFrame(this.words, this.control)
      if (frame >= 0) {
        Atomics.store(this.host.claims, this.claimAt(frame), -1)
        return frame
      }
      const left = deadline - performance.now()
      if (left <= 0) throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.id)
      // Every other buffer is pinned by a reader or loaned: wait for the next publish (or 1 ms for an unpin).
      // A pending waitAsync does not keep the thread alive, so hold it while we wait.
      const res = Atomics.waitAsync(this.words, generationAt, Atomics.load(this.words, generationAt), Math.min(left, 1))
      if (res.async) {
        this.host.hold()
        try {
          await res.value
        } finally {
          this.host.letGo()
        }
      }
    }
  }

  /** A loan as the public Loan object: `data` is frame buffer `frame`, publishing waits up to `timeout` ms. */
  lend (frame: number, data: TypedArray, timeout: number): Loan {
    let done = false
    return {
      data,
      frame,
      publish: async () => {
        if (done) throw pxpError('PXP_ERR_CLOSED', 'loan')
        done = true
        return await this.publish(frame, timeout)
      },
      cancel: () => {
        if (done) return
        done = true
        this.giveBack(frame)
      },
    }
  }

  /** Give a loaned frame buffer back unpublished. */
  giveBack (frame: number): void {
    Atomics.store(this.host.claims, this.claimAt(frame), 0)
    cancelLoan(this.words, this.control, frame)
  }

  /** Publish loaned frame buffer `frame` as the new front under the write lock; resolves to the new generation. */
  async publish (frame: number, timeout: number): Promise<number> {
    try {
      await lockImage(this.host, this.control, timeout, this.id)
    } catch (err) {
      this.giveBack(frame)
      throw err
    }
    let generation: number
    try {
      generation = publishFrame(this.words, this.control, frame)
      Atomics.store(this.host.claims, this.claimAt(frame), 0)
    } finally {
      unlock(this.words, this.control, this.host.token)
    }
    this.host.notifyCommit(this.control)
    return generation
  }

  private claimAt (frame: number): number {
    return claimBase(this.control) + CLAIM.PINS + frame
  }
}
