/**
 * A shared image as a client sees it: TypedArrays over the server's own memory, no copy.
 *
 * Consistency follows protocol/layout.ts: plain images use the seqlock (a read that overlapped a write is
 * run again), frame-buffered images pin the published buffer for readers and loan another buffer to
 * writers (frame-buffers.ts). Line-based images give rows zero-copy and `data` as a read-only contiguous
 * copy cached per generation (line-staging.ts), as the array-interface discussion proposed.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { dtypeOf, type DType, type TypedArray } from '../../protocol/dtypes.js'
import { pxpError } from '../../protocol/errors.js'
import { SLOT, SLOT_FLAG, slotBase } from '../../protocol/layout.js'
import { controlSlotOf, isLive, type SlotRef } from '../../protocol/slot-reader.js'
import { cStrides } from '../../protocol/spec.js'
import { fromCOrder, type RowLayout, toCOrder } from '../../protocol/strided-copy.js'
import { beginWrite, endWrite, tryLock, unlock } from '../../protocol/sync.js'
import { FrameBuffers } from './frame-buffers.js'
import { type Frame, type ImageHost, type Loan, lockImage, type WaitOptions, type WriteOptions } from './image-host.js'
import { LineRows } from './line-staging.js'

const READ_ATTEMPTS = 4

export class SharedImage {
  readonly id: string
  readonly dtype: DType
  readonly shape: readonly number[]
  /** Byte strides, as numpy spells them. */
  readonly strides: readonly number[]
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly layout: 'block' | 'lines'
  /** Writes are refused (PXP_ERR_READONLY). */
  readonly readonly: boolean
  /** `data` is a converted copy (line-based images), not the shared memory. */
  readonly copied: boolean
  readonly frames: number

  /** @internal The slot whose words hold the seqlock, generation, lock and frames (the root's, for a view). */
  readonly control: number
  private readonly words: Int32Array
  private readonly elementStrides: number[]
  /** Per frame buffer: a TypedArray from the image's first element to its last (block layout). */
  private readonly frameData: TypedArray[]
  /** Per frame buffer: all bytes of the root image (a view's writes must carry the rest of the root along). */
  private readonly rootFrames: Uint8Array[]
  private readonly buffers: FrameBuffers
  private readonly rows: LineRows | null
  /** The image itself refuses writes (as opposed to `readonly`, which also covers converted copies). */
  private readonly imageReadonly: boolean
  private released = false
  /** Frame the accessors look at: the published one, or the pinned/loaned one inside read()/write(). */
  private activeFrame = -1

  /** @internal Built by the stores' open(). */
  constructor (
    private readonly store: ImageHost,
    private readonly ref: SlotRef,
    private readonly initial: ImageDescriptor,
    blocks: (index: number) => SharedArrayBuffer,
  ) {
    const d = initial
    this.id = d.id
    this.dtype = dtypeOf(d.typestr)
    this.shape = d.shape
    this.width = d.width
    this.height = d.height
    this.channels = d.channels
    this.layout = d.layout
    this.readonly = d.readonly
    this.copied = d.copied
    this.words = store.words
    this.control = controlSlotOf(this.words, ref.slot)
    this.imageReadonly = (this.words[slotBase(ref.slot) + SLOT.FLAGS] & SLOT_FLAG.READONLY) !== 0
    const item = this.dtype.itemSize
    const strides = d.__array_interface__.strides ?? cStrides(d.shape, item)
    this.strides = strides
    this.elementStrides = strides.map((s) => s / item)
    this.buffers = new FrameBuffers(store, this.control, this.id, () => this.assertLeased())
    const loc = d.location
    if (loc.kind === 'block') {
      this.frames = loc.frames
      const span = (d.shape[0] - 1) * strides[0] + d.byteLength / d.shape[0]
      const buffer = blocks(loc.block)
      const frame0 = loc.byteOffset - loc.frame * loc.frameStride
      this.frameData = Array.from({ length: this.frames }, (_, f) =>
        new this.dtype.array(buffer, frame0 + f * loc.frameStride, span / item))
      this.rows = null
      const cbase = slotBase(this.control)
      const rootOffset = this.words[cbase + SLOT.BYTE_OFFSET] >>> 0
      const rootLength = this.words[cbase + SLOT.BYTE_LENGTH] >>> 0
      this.rootFrames = Array.from({ length: this.frames }, (_, f) =>
        new Uint8Array(buffer, rootOffset + f * loc.frameStride, rootLength))
    } else {
      this.frames = 1
      this.frameData = []
      this.rootFrames = []
      this.rows = new LineRows(loc.segments, loc.rowBytes, blocks, this.dtype, this.words, this.control)
    }
  }

  /** The descriptor, with the current generation. */
  get descriptor (): ImageDescriptor {
    const d = { ...this.initial, generation: this.generation }
    if (d.location.kind === 'block' && this.frames > 1) {
      const frame = this.buffers.front
      const frame0 = d.location.byteOffset - d.location.frame * d.location.frameStride
      d.location = { ...d.location, frame, byteOffset: frame0 + frame * d.location.frameStride }
    }
    return d
  }

  /** Committed writes so far (read atomically from shared memory). */
  get generation (): number {
    return Atomics.load(this.words, slotBase(this.control) + SLOT.GENERATION) >>> 0
  }

  /**
   * The pixels as a TypedArray of the image's dtype over shared memory (C order for plain images; for a
   * view, from its first to its last element, addressed with `strides`). Line-based images: a read-only
   * contiguous copy of the current generation. Outside read()/write() a concurrent writer may be changing it.
   */
  get data (): TypedArray {
    this.assertLeased()
    if (this.rows !== null) return this.rows.staging ?? this.rows.copy()
    return this.frameData[this.currentFrame()]
  }

  /** Row `y` as a TypedArray over shared memory (zero-copy for every layout). */
  row (y: number): TypedArray {
    this.assertLeased()
    if (!Number.isInteger(y) || y < 0 || y >= this.height) throw pxpError('PXP_ERR_BAD_REGION', `row ${y}`, this.id, `${this.width}x${this.height}`)
    const perRow = this.width * this.channels
    if (this.rows !== null) {
      if (this.rows.staging !== null) return this.rows.staging.subarray(y * perRow, (y + 1) * perRow)
      const b = this.rows.row(y)
      return new this.dtype.array(b.buffer, b.byteOffset, perRow)
    }
    const start = y * this.elementStrides[0]
    return this.frameData[this.currentFrame()].subarray(start, start + perRow)
  }

  /** The channels of pixel (x, y), zero-copy. */
  pixel (x: number, y: number): TypedArray {
    if (!Number.isInteger(x) || x < 0 || x >= this.width) throw pxpError('PXP_ERR_BAD_REGION', `pixel (${x}, ${y})`, this.id, `${this.width}x${this.height}`)
    const row = this.row(y)
    return row.subarray(x * this.channels, (x + 1) * this.channels)
  }

  /** Index into `data` of channel `c` of pixel (x, y) (block layout). */
  index (x: number, y: number, c = 0): number {
    return y * this.elementStrides[0] + x * (this.elementStrides[1] ?? 1) + c
  }

  /**
   * Run `fn` on one consistent generation and return its result. `fn` must be synchronous and may run more
   * than once (a run that overlapped a write is discarded), so it should only read.
   */
  async read<T> (fn: (data: TypedArray, image: SharedImage) => T): Promise<T> {
    this.assertLeased()
    const words = this.words
    const slot = this.control
    if (this.frames > 1) {
      const { frame } = this.buffers.pin()
      try {
        return this.withFrame(frame, () => fn(this.frameData[frame], this))
      } finally {
        this.buffers.unpin(frame)
      }
    }
    const base = slotBase(slot)
    for (let i = 0; i < READ_ATTEMPTS; i++) {
      const s1 = Atomics.load(words, base + SLOT.SEQ)
      if ((s1 & 1) !== 0) {
        // A write is in progress: wait for it (workers may block briefly; it is one memory copy at most).
        Atomics.wait(words, base + SLOT.SEQ, s1, 5)
        continue
      }
      const result = fn(this.data, this)
      if (Atomics.load(words, base + SLOT.SEQ) === s1) return result
    }
    // Writers kept overlapping: take the lock for one run, which blocks them for exactly that long.
    await lockImage(this.store, slot, this.store.lockTimeoutMs, this.id)
    try {
      return fn(this.data, this)
    } finally {
      unlock(words, slot, this.store.token)
    }
  }

  /**
   * Run `fn` with exclusive write access and commit a new generation (waking every waiter). `data` is the
   * shared memory itself (plain images), a loaned frame buffer holding the current pixels (frame-buffered
   * images) or a staging copy written back on commit (line-based images). Resolves to the new generation.
   */
  write (fn: (data: TypedArray, image: SharedImage) => void, options: WriteOptions = {}): Promise<number> {
    try {
      this.assertWritable()
      // Uncontended plain image: lock, write and commit right now; only the result goes through a promise.
      if (this.frames === 1 && tryLock(this.words, this.control, this.store.token)) return Promise.resolve(this.commitLocked(fn))
    } catch (err) {
      return Promise.reject(err)
    }
    return this.writeSlow(fn, options)
  }

  private async writeSlow (fn: (data: TypedArray, image: SharedImage) => void, options: WriteOptions): Promise<number> {
    const timeout = options.timeout ?? this.store.lockTimeoutMs
    if (this.frames > 1) {
      const loan = await this.buffers.loan(timeout)
      try {
        const { frame: src } = this.buffers.pin()
        try {
          this.rootFrames[loan].set(this.rootFrames[src])
        } finally {
          this.buffers.unpin(src)
        }
        this.withFrame(loan, () => fn(this.frameData[loan], this))
      } catch (err) {
        this.buffers.giveBack(loan)
        throw err
      }
      return await this.buffers.publish(loan, timeout)
    }
    await lockImage(this.store, this.control, timeout, this.id)
    return this.commitLocked(fn)
  }

  /** Write and commit while holding the lock (plain and line-based images); releases the lock. */
  private commitLocked (fn: (data: TypedArray, image: SharedImage) => void): number {
    const words = this.words
    const slot = this.control
    let generation: number
    try {
      this.assertLeased()
      beginWrite(words, slot)
      try {
        if (this.rows !== null) this.rows.write((staging) => fn(staging, this))
        else fn(this.frameData[0], this)
      } finally {
        generation = endWrite(words, slot)
      }
    } finally {
      unlock(words, slot, this.store.token)
    }
    this.store.notifyCommit(slot)
    return generation
  }

  /**
   * Overwrite the whole image with C-order bytes (exactly byteLength of them, else PXP_ERR_BYTE_COUNT and
   * nothing is written) and commit; resolves to the new generation. The worker counterpart of an HTTP PUT.
   */
  async set (bytes: ArrayBufferView, options: WriteOptions = {}): Promise<number> {
    const source = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (source.byteLength !== this.initial.byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', this.initial.byteLength, source.byteLength)
    const rows: RowLayout = { rowLength: this.initial.byteLength / this.height, height: this.height, rowStride: this.strides[0] }
    return await this.write((data) => fromCOrder(source, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), rows), options)
  }

  /**
   * Loan a buffer for the next frame. Frame-buffered images (created with `frames` ≥ 2) loan a shared buffer
   * that no reader holds, and publishing swaps it in with no copy; plain images loan a private staging buffer
   * that publishing copies in under the lock (one memory copy). Either way readers are never stalled by the
   * time the producer takes to fill the frame.
   */
  async loan (options: WriteOptions = {}): Promise<Loan> {
    this.assertWritable()
    const timeout = options.timeout ?? this.store.lockTimeoutMs
    if (this.rows === null && this.frames > 1) {
      const frame = await this.buffers.loan(timeout)
      return this.buffers.lend(frame, this.frameData[frame], timeout)
    }
    const staging = new this.dtype.array(this.initial.byteLength / this.dtype.itemSize)
    let done = false
    return {
      data: staging,
      frame: -1,
      publish: async () => {
        if (done) throw pxpError('PXP_ERR_CLOSED', 'loan')
        done = true
        return await this.write((data) => fromCOrder(staging, data, this.elementRows()), { timeout })
      },
      cancel: () => { done = true },
    }
  }

  /**
   * Hold one consistent frame until `release()`. Frame-buffered images pin the published buffer (no copy;
   * writers publish into other buffers meanwhile); plain and line-based images return a consistent copy.
   */
  async acquire (): Promise<Frame> {
    this.assertLeased()
    if (this.frames > 1) return this.buffers.hold((frame) => this.frameData[frame])
    let generation = 0
    const data = await this.read((d, image) => {
      generation = image.generation
      return image.rows !== null ? d.slice() : toCOrder(d, image.elementRows())
    })
    return { data, generation, copied: true, release: () => {} }
  }

  /**
   * Wait until the generation differs from `generation` and resolve to the new one. No polling, no message:
   * Atomics.waitAsync in the server's process, a futex wait from another process. Rejects with
   * PXP_ERR_TIMEOUT, PXP_ERR_ABORTED, or PXP_ERR_NOT_FOUND when the image is deleted meanwhile.
   */
  async waitForChange (generation: number, options: WaitOptions = {}): Promise<number> {
    this.assertLeased()
    const { timeout, signal } = options
    const words = this.words
    const at = slotBase(this.control) + SLOT.GENERATION
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout
    let aborted = false
    const onAbort = (): void => {
      aborted = true
      // Wake our own waiter; other waiters on the word see no change and wait again.
      this.store.interruptWaits(this.control)
    }
    if (signal?.aborted === true) throw pxpError('PXP_ERR_ABORTED', 'waitForChange')
    signal?.addEventListener('abort', onAbort, { once: true })
    this.store.hold()
    try {
      for (;;) {
        const current = Atomics.load(words, at) >>> 0
        if (current !== generation) return current
        if (aborted) throw pxpError('PXP_ERR_ABORTED', 'waitForChange')
        if (!isLive(words, this.ref)) throw pxpError('PXP_ERR_NOT_FOUND', this.id)
        const left = deadline - performance.now()
        if (left <= 0) throw pxpError('PXP_ERR_TIMEOUT', timeout, `waiting for a generation after ${generation} of ${this.id}`)
        await this.store.waitGeneration(this.control, generation, left)
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.store.letGo()
    }
  }

  /**
   * Like waitForChange, but blocks this thread (Atomics.wait, or a futex from another process) until the
   * generation moves: the lowest wake-up latency there is, for a thread whose only job is to react to frames.
   * In the server's process, worker threads only (its main thread must not block). Throws PXP_ERR_TIMEOUT,
   * or PXP_ERR_NOT_FOUND when the image is deleted.
   */
  waitForChangeSync (generation: number, options: { timeout?: number } = {}): number {
    this.assertLeased()
    const words = this.words
    const at = slotBase(this.control) + SLOT.GENERATION
    const deadline = options.timeout === undefined ? Infinity : performance.now() + options.timeout
    for (;;) {
      const current = Atomics.load(words, at) >>> 0
      if (current !== generation) return current
      if (!isLive(words, this.ref)) throw pxpError('PXP_ERR_NOT_FOUND', this.id)
      const left = deadline - performance.now()
      if (left <= 0) throw pxpError('PXP_ERR_TIMEOUT', options.timeout, `waiting for a generation after ${generation} of ${this.id}`)
      this.store.waitGenerationSync(this.control, generation, left)
    }
  }

  /** Give the handle back: its memory may be reused once every handle on a deleted image is released. */
  release (): void {
    if (this.released) return
    this.released = true
    this.store.releaseHandle(this, this.ref.slot)
  }

  get isReleased (): boolean { return this.released }

  // ---- internals ---------------------------------------------------------------------------------

  private currentFrame (): number {
    if (this.activeFrame >= 0) return this.activeFrame
    return this.frames > 1 ? this.buffers.front : 0
  }

  private withFrame<T> (frame: number, fn: () => T): T {
    const previous = this.activeFrame
    this.activeFrame = frame
    try {
      return fn()
    } finally {
      this.activeFrame = previous
    }
  }

  /** How `data` of a block image is laid out, in elements (a view's rows are its root's stride apart). */
  private elementRows (): RowLayout {
    return { rowLength: this.width * this.channels, height: this.height, rowStride: this.elementStrides[0] }
  }

  private assertLeased (): void {
    if (this.released) throw pxpError('PXP_ERR_NOT_LEASED', this.id)
  }

  private assertWritable (): void {
    this.assertLeased()
    if (this.imageReadonly) throw pxpError('PXP_ERR_READONLY', this.id)
  }
}
