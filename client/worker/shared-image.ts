/**
 * A shared image as a worker thread sees it: TypedArrays over the server's own memory, no copy.
 *
 * Consistency follows protocol/layout.ts: plain images use the seqlock (a read that overlapped a write is
 * run again), frame-buffered images pin the published buffer for readers and loan another buffer to
 * writers. Line-based images give rows zero-copy and `data` as a read-only contiguous copy cached per
 * generation, as the array-interface discussion proposed.
 */
import type { ImageDescriptor, RowSegment } from '../../protocol/descriptor.js'
import { dtypeOf, type DType, type TypedArray } from '../../protocol/dtypes.js'
import { pxpError } from '../../protocol/errors.js'
import { CLAIM, claimBase, SLOT, SLOT_FLAG, slotBase } from '../../protocol/layout.js'
import { isLive, type SlotRef } from '../../protocol/slot-reader.js'
import {
  beginWrite, cancelLoan, endWrite, lockAsync, loanFrame, pinFront, publishFrame, tryLock, unlock, unpin,
} from '../../protocol/sync.js'

/**
 * What a SharedImage needs from the store that opened it. A worker thread's store (WorkerStore) and a store
 * attached from another process (pixelport/attach) implement it; everything else is the same shared memory
 * and the same steps. The difference is only who can be woken how: Atomics.notify reaches this process,
 * a futex reaches others.
 */
export interface ImageHost {
  /** The image table. */
  readonly words: Int32Array
  /** This client's claims (layout.ts CLAIM_*), read by the server to recover them if the client dies. */
  readonly claims: Int32Array
  /** This client's write-lock token. */
  readonly token: number
  readonly lockTimeoutMs: number
  /** Is a lock `holder` one whose unlock cannot wake this thread (so lock waits must look again)? */
  isForeignHolder (holder: number): boolean
  /** Keep the thread alive while something waits; pair with letGo(). */
  hold (): void
  letGo (): void
  /** The handle was released: drop its lease. */
  releaseHandle (image: SharedImage, slot: number): void
  /** A commit of control slot `slot` was made and its lock released: wake every waiter there is. */
  notifyCommit (slot: number): void
  /** Resolve when GENERATION of `slot` may have moved from `generation` (spurious wake-ups allowed) or after `timeoutMs`. */
  waitGeneration (slot: number, generation: number, timeoutMs: number): Promise<void>
  /** Like waitGeneration, blocking the calling thread. */
  waitGenerationSync (slot: number, generation: number, timeoutMs: number): void
  /** Make this client's pending waits on `slot` return at once (they then look at why). */
  interruptWaits (slot: number): void
}

export interface WaitOptions {
  /** Give up after this many milliseconds (PXP_ERR_TIMEOUT). Default: wait forever. */
  timeout?: number
  /** Abort the wait (PXP_ERR_ABORTED). */
  signal?: AbortSignal
}

export interface WriteOptions {
  /** How long to wait for the write lock (or a free frame buffer). Default: the server's lockTimeoutMs. */
  timeout?: number
}

/** A frame buffer on loan to a writer: fill `data`, then `publish()` it as the next generation. */
export interface Loan {
  readonly data: TypedArray
  /** Index of the loaned frame buffer, or -1 for a private staging buffer (plain images). */
  readonly frame: number
  /** Publish the loaned pixels as a new generation; resolves to it. */
  publish (): Promise<number>
  /** Give the buffer back unpublished. */
  cancel (): void
}

/** A consistent frame held by a reader until `release()`. */
export interface Frame {
  readonly data: TypedArray
  readonly generation: number
  /** True when `data` is a private copy (plain images), false when it is the pinned shared buffer. */
  readonly copied: boolean
  release (): void
}

/** Where the bytes of one row of a line-based image live. */
interface RowRef { bytes: Uint8Array }

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

  private readonly words: Int32Array
  private readonly control: number
  private readonly elementStrides: number[]
  /** Per frame buffer: a TypedArray from the image's first element to its last (block layout). */
  private readonly frameData: TypedArray[]
  private readonly rows: RowRef[] | null
  /** Per frame buffer: all bytes of the root image (a view's writes must carry the rest of the root along). */
  private readonly rootFrames: Uint8Array[]
  /** The image itself refuses writes (as opposed to `readonly`, which also covers converted copies). */
  private readonly imageReadonly: boolean
  private released = false
  /** Frame the accessors look at: the published one, or the pinned/loaned one inside read()/write(). */
  private activeFrame = -1
  private linesCache: { generation: number, data: TypedArray } | null = null
  /** Inside write() on a line-based image: the staging copy the accessors write into. */
  private linesStaging: TypedArray | null = null

  /** @internal Built by WorkerStore.open() and AttachedStore.open(). */
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
    const parent = this.words[slotBase(ref.slot) + SLOT.PARENT]
    this.control = parent >= 0 ? parent : ref.slot
    this.imageReadonly = (this.words[slotBase(ref.slot) + SLOT.FLAGS] & SLOT_FLAG.READONLY) !== 0
    const item = this.dtype.itemSize
    const c = cOrderStrides(d.shape, item)
    const strides = d.__array_interface__.strides ?? c
    this.strides = strides
    this.elementStrides = strides.map((s) => s / item)
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
      this.rows = rowsOf(loc.segments, loc.rowBytes, blocks)
    }
  }

  /** The descriptor, with the current generation. */
  get descriptor (): ImageDescriptor {
    const d = { ...this.initial, generation: this.generation }
    if (d.location.kind === 'block' && this.frames > 1) {
      const frame = Atomics.load(this.words, slotBase(this.control) + SLOT.FRONT)
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
    if (this.linesStaging !== null) return this.linesStaging
    if (this.rows !== null) return this.linesCopy()
    return this.frameData[this.currentFrame()]
  }

  /** Row `y` as a TypedArray over shared memory (zero-copy for every layout). */
  row (y: number): TypedArray {
    this.assertLeased()
    if (!Number.isInteger(y) || y < 0 || y >= this.height) throw pxpError('PXP_ERR_BAD_REGION', `row ${y}`, this.id, `${this.width}x${this.height}`)
    const perRow = this.width * this.channels
    if (this.linesStaging !== null) return this.linesStaging.subarray(y * perRow, (y + 1) * perRow)
    if (this.rows !== null) {
      const b = this.rows[y].bytes
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
      const frame = this.pin()
      try {
        return this.withFrame(frame, () => fn(this.frameData[frame], this))
      } finally {
        this.unpinFrame(frame)
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
    await this.lock(this.store.lockTimeoutMs)
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
      const loan = await this.loanFrame(timeout)
      try {
        const src = this.pin()
        try {
          this.rootFrames[loan].set(this.rootFrames[src])
        } finally {
          this.unpinFrame(src)
        }
        this.withFrame(loan, () => fn(this.frameData[loan], this))
      } catch (err) {
        this.returnLoan(loan)
        throw err
      }
      return await this.publishLoan(loan, timeout)
    }
    await this.lock(timeout)
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
        if (this.rows !== null) {
          const staging = this.gatherRows()
          this.linesStaging = staging
          try {
            fn(staging, this)
          } finally {
            this.linesStaging = null
          }
          this.scatterRows(staging)
        } else {
          fn(this.frameData[0], this)
        }
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
    const rowBytes = this.initial.byteLength / this.height
    return await this.write((data) => {
      const target = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      if (target.byteLength === source.byteLength) target.set(source)
      else for (let y = 0; y < this.height; y++) target.set(source.subarray(y * rowBytes, (y + 1) * rowBytes), y * this.strides[0])
    }, options)
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
    if (this.rows !== null || this.frames === 1) {
      const staging = new this.dtype.array(this.initial.byteLength / this.dtype.itemSize)
      let done = false
      return {
        data: staging,
        frame: -1,
        publish: async () => {
          if (done) throw pxpError('PXP_ERR_CLOSED', 'loan')
          done = true
          return await this.write((data) => copyCOrder(staging, data, this), { timeout })
        },
        cancel: () => { done = true },
      }
    }
    const frame = await this.loanFrame(timeout)
    let done = false
    return {
      data: this.frameData[frame],
      frame,
      publish: async () => {
        if (done) throw pxpError('PXP_ERR_CLOSED', 'loan')
        done = true
        return await this.publishLoan(frame, timeout)
      },
      cancel: () => {
        if (done) return
        done = true
        this.returnLoan(frame)
      },
    }
  }

  /**
   * Hold one consistent frame until `release()`. Frame-buffered images pin the published buffer (no copy;
   * writers publish into other buffers meanwhile); plain and line-based images return a consistent copy.
   */
  async acquire (): Promise<Frame> {
    this.assertLeased()
    if (this.frames > 1) {
      const frame = this.pin()
      const generation = this.pinnedGeneration
      let released = false
      return {
        data: this.frameData[frame],
        generation,
        copied: false,
        release: () => {
          if (released) return
          released = true
          this.unpinFrame(frame)
        },
      }
    }
    let generation = 0
    const data = await this.read((d, image) => {
      generation = image.generation
      return image.rows !== null ? d.slice() : copyToCOrder(d, image)
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

  private pinnedGeneration = 0

  private currentFrame (): number {
    if (this.activeFrame >= 0) return this.activeFrame
    return this.frames > 1 ? Atomics.load(this.words, slotBase(this.control) + SLOT.FRONT) : 0
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

  private pin (): number {
    for (;;) {
      const pinned = pinFront(this.words, this.control)
      if (pinned !== null) {
        Atomics.add(this.store.claims, claimBase(this.control) + CLAIM.PINS + pinned.frame, 1)
        this.pinnedGeneration = pinned.generation
        return pinned.frame
      }
      this.assertLeased()
    }
  }

  private unpinFrame (frame: number): void {
    Atomics.sub(this.store.claims, claimBase(this.control) + CLAIM.PINS + frame, 1)
    unpin(this.words, this.control, frame)
  }

  private async loanFrame (timeout: number): Promise<number> {
    const deadline = performance.now() + timeout
    for (;;) {
      this.assertLeased()
      const frame = loanFrame(this.words, this.control)
      if (frame >= 0) {
        Atomics.store(this.store.claims, claimBase(this.control) + CLAIM.PINS + frame, -1)
        return frame
      }
      const left = deadline - performance.now()
      if (left <= 0) throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.id)
      // Every other buffer is pinned by a reader or loaned: wait for the next publish (or 1 ms for an unpin).
      // A pending waitAsync does not keep the thread alive, so hold it while we wait.
      const res = Atomics.waitAsync(this.words, slotBase(this.control) + SLOT.GENERATION, Atomics.load(this.words, slotBase(this.control) + SLOT.GENERATION), Math.min(left, 1))
      if (res.async) {
        this.store.hold()
        try {
          await res.value
        } finally {
          this.store.letGo()
        }
      }
    }
  }

  private returnLoan (frame: number): void {
    Atomics.store(this.store.claims, claimBase(this.control) + CLAIM.PINS + frame, 0)
    cancelLoan(this.words, this.control, frame)
  }

  private async publishLoan (frame: number, timeout: number): Promise<number> {
    try {
      await this.lock(timeout)
    } catch (err) {
      this.returnLoan(frame)
      throw err
    }
    let generation: number
    try {
      generation = publishFrame(this.words, this.control, frame)
      Atomics.store(this.store.claims, claimBase(this.control) + CLAIM.PINS + frame, 0)
    } finally {
      unlock(this.words, this.control, this.store.token)
    }
    this.store.notifyCommit(this.control)
    return generation
  }

  private async lock (timeout: number): Promise<void> {
    // Uncontended: take it on the spot, no promise machinery.
    if (tryLock(this.words, this.control, this.store.token)) return
    this.store.hold()
    try {
      if (!await lockAsync(this.words, this.control, this.store.token, timeout, (holder) => this.store.isForeignHolder(holder))) {
        throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.id)
      }
    } finally {
      this.store.letGo()
    }
  }

  private linesCopy (): TypedArray {
    const words = this.words
    const base = slotBase(this.control)
    for (;;) {
      const s1 = Atomics.load(words, base + SLOT.SEQ)
      if ((s1 & 1) !== 0) {
        Atomics.wait(words, base + SLOT.SEQ, s1, 5)
        continue
      }
      const generation = Atomics.load(words, base + SLOT.GENERATION) >>> 0
      if (this.linesCache?.generation === generation) return this.linesCache.data
      const data = this.gatherRows()
      if (Atomics.load(words, base + SLOT.SEQ) === s1) {
        this.linesCache = { generation, data }
        return data
      }
    }
  }

  private gatherRows (): TypedArray {
    const rows = this.rows!
    const rowBytes = rows[0].bytes.byteLength
    const out = new Uint8Array(rowBytes * rows.length)
    for (let y = 0; y < rows.length; y++) out.set(rows[y].bytes, y * rowBytes)
    return new this.dtype.array(out.buffer, 0, out.byteLength / this.dtype.itemSize)
  }

  private scatterRows (staging: TypedArray): void {
    const rows = this.rows!
    const bytes = new Uint8Array(staging.buffer, staging.byteOffset, staging.byteLength)
    const rowBytes = rows[0].bytes.byteLength
    for (let y = 0; y < rows.length; y++) rows[y].bytes.set(bytes.subarray(y * rowBytes, (y + 1) * rowBytes))
  }

  private assertLeased (): void {
    if (this.released) throw pxpError('PXP_ERR_NOT_LEASED', this.id)
  }

  private assertWritable (): void {
    this.assertLeased()
    if (this.imageReadonly) throw pxpError('PXP_ERR_READONLY', this.id)
  }
}

function cOrderStrides (shape: readonly number[], item: number): number[] {
  const out = new Array<number>(shape.length)
  let s = item
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s
    s *= shape[i]
  }
  return out
}

function rowsOf (segments: RowSegment[], rowBytes: number, blocks: (index: number) => SharedArrayBuffer): RowRef[] {
  const rows: RowRef[] = []
  for (const s of segments) {
    const buffer = blocks(s.block)
    for (let r = 0; r < s.rows; r++) rows.push({ bytes: new Uint8Array(buffer, s.byteOffset + r * rowBytes, rowBytes) })
  }
  return rows
}

/** Copy a view's strided elements into a fresh C-order array (plain images are already C order). */
function copyToCOrder (data: TypedArray, image: SharedImage): TypedArray {
  const perRow = image.width * image.channels
  if (data.length === perRow * image.height) return data.slice()
  const out = new image.dtype.array(perRow * image.height)
  for (let y = 0; y < image.height; y++) {
    const start = image.index(0, y)
    ;(out as Uint8Array).set((data as Uint8Array).subarray(start, start + perRow), y * perRow)
  }
  return out
}

/** Copy C-order `source` into `target`, which may be a strided view. */
function copyCOrder (source: TypedArray, target: TypedArray, image: SharedImage): void {
  const perRow = image.width * image.channels
  if (target.length === source.length) {
    (target as Uint8Array).set(source as Uint8Array)
    return
  }
  for (let y = 0; y < image.height; y++) {
    (target as Uint8Array).set((source as Uint8Array).subarray(y * perRow, (y + 1) * perRow), image.index(0, y))
  }
}
