/**
 * The arena: shared-memory blocks obtained from a BlockProvider, sub-allocated with RunAllocators, under
 * one total capacity.
 *
 * Small images share blocks of `blockSize`; an image larger than a block gets a dedicated block of its own.
 * Block indices are never reused, so a worker's cache of "block index → SharedArrayBuffer" never goes
 * stale. When no contiguous run fits, `allocateRows` can still place an image as runs of rows spread over
 * blocks (the line-based layout).
 */
import { pxpError } from '../../protocol/errors.js'
import type { BlockMemory, BlockProvider } from './block-provider.js'
import { ALIGNMENT, alignUp, RunAllocator } from './run-allocator.js'

export interface ArenaOptions {
  provider: BlockProvider
  /** Size of shared blocks in bytes (rounded up to ALIGNMENT). */
  blockSize: number
  /** Total bytes of blocks the arena may hold. */
  capacity: number
}

export interface Block {
  readonly index: number
  readonly memory: BlockMemory
  readonly allocator: RunAllocator
  /** A block made for one large image; released as soon as that image is freed. */
  readonly dedicated: boolean
}

/** One contiguous piece of arena memory. */
export interface Allocation {
  readonly block: number
  readonly offset: number
  readonly length: number
}

/** A run of consecutive rows of a line-based image, and the allocation holding it. */
export interface RowRun extends Allocation {
  readonly rows: number
}

export interface ArenaStats {
  provider: string
  blockSize: number
  capacity: number
  blocks: number
  dedicatedBlocks: number
  /** Bytes of blocks obtained from the provider. */
  reserved: number
  /** Bytes handed out to images (rounded to ALIGNMENT). */
  used: number
  /** capacity - used: what could still be handed out, in pieces. */
  free: number
  /** The largest single allocation that would succeed right now. */
  largestFreeRun: number
}

/** What a planning copy's blocks stand on: no memory at all (a plan only counts offsets). */
const NO_MEMORY: BlockMemory = { buffer: new SharedArrayBuffer(0), name: null }
const PLANNING_PROVIDER: BlockProvider = {
  kind: 'planning',
  allocate: () => NO_MEMORY,
  release: () => {},
  close: () => {},
}

export class Arena {
  readonly provider: BlockProvider
  readonly blockSize: number
  readonly capacity: number
  private readonly blocks = new Map<number, Block>()
  private nextIndex = 0
  private reservedBytes = 0
  private usedBytes = 0

  constructor (options: ArenaOptions) {
    const blockSize = alignUp(options.blockSize)
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0) throw new RangeError('blockSize must be a positive integer')
    if (!Number.isSafeInteger(options.capacity) || options.capacity <= 0) throw new RangeError('capacity must be a positive integer')
    this.provider = options.provider
    this.blockSize = blockSize
    this.capacity = Math.floor(options.capacity / ALIGNMENT) * ALIGNMENT
  }

  block (index: number): Block | undefined {
    return this.blocks.get(index)
  }

  /** Every block, in index order. */
  allBlocks (): Block[] {
    return [...this.blocks.values()]
  }

  get used (): number { return this.usedBytes }

  /** Allocate one contiguous run; throws PXP_ERR_CAPACITY when it cannot be had (nothing changes then). */
  allocate (length: number): Allocation {
    const found = this.tryAllocate(length)
    if (found === null) throw this.capacityError(length)
    return found
  }

  /** Allocate one contiguous run, or return null (nothing changes then). */
  tryAllocate (length: number): Allocation | null {
    // Checked here, not only in RunAllocator: by then a new block may already have been opened.
    if (!Number.isFinite(length) || length <= 0) throw new RangeError(`allocation length must be positive, got ${length}`)
    const need = alignUp(length)
    if (need > this.blockSize) return this.allocateDedicated(need)
    for (const block of this.blocks.values()) {
      if (block.dedicated || block.allocator.largestFreeRun < need) continue
      return this.take(block, need)
    }
    const block = this.newSharedBlock(need)
    return block === null ? null : this.take(block, need)
  }

  /**
   * Place `rows` rows of `rowBytes` each as runs of consecutive rows. `perRow` makes every row its own
   * allocation (an explicit line-based image, like PIL's array of row pointers); otherwise rows go into the
   * largest free runs first (the fallback when memory is too fragmented for one run). All or nothing.
   */
  allocateRows (rowBytes: number, rows: number, perRow: boolean): RowRun[] {
    if (rowBytes * rows > this.capacity - this.usedBytes) throw this.capacityError(rowBytes * rows)
    const runs: RowRun[] = []
    const firstNewBlock = this.nextIndex
    try {
      let left = rows
      while (left > 0) {
        const take = perRow ? 1 : this.rowsThatFit(rowBytes, left)
        if (take === 0) throw this.capacityError(rowBytes * rows)
        const a = this.tryAllocate(rowBytes * take)
        if (a === null) throw this.capacityError(rowBytes * rows)
        runs.push({ ...a, rows: take })
        left -= take
      }
      return runs
    } catch (err) {
      for (const run of runs) this.free(run)
      // Blocks opened for runs that were just given back would otherwise stay reserved: all or nothing.
      for (const b of [...this.blocks.values()]) if (b.index >= firstNewBlock && b.allocator.isEmpty) this.dropBlock(b)
      throw err
    }
  }

  free (allocation: Allocation): void {
    const block = this.blocks.get(allocation.block)
    if (block === undefined) throw new RangeError(`no block ${allocation.block}`)
    const length = block.allocator.lengthOf(allocation.offset)
    if (length === undefined) throw new RangeError(`no allocation at ${allocation.block}:${allocation.offset}`)
    block.allocator.free(allocation.offset)
    this.usedBytes -= length
    if (block.dedicated) this.dropBlock(block)
  }

  /**
   * A copy of the arena's bookkeeping over no memory: allocations and frees on it behave exactly as they
   * would here (same blocks, same free runs, same capacity), but change nothing here and map nothing. The
   * store plans evictions on it: which images must go for an allocation to succeed, before any goes.
   */
  planningCopy (): Arena {
    const copy = new Arena({ provider: PLANNING_PROVIDER, blockSize: this.blockSize, capacity: this.capacity })
    for (const b of this.blocks.values()) {
      copy.blocks.set(b.index, { index: b.index, memory: NO_MEMORY, allocator: b.allocator.clone(), dedicated: b.dedicated })
    }
    copy.nextIndex = this.nextIndex
    copy.reservedBytes = this.reservedBytes
    copy.usedBytes = this.usedBytes
    return copy
  }

  /**
   * Take over block `index` of a previous store (adoption): its memory as found, nothing allocated yet.
   * Later blocks get higher indices. Call finishAdoption() once every adopted allocation is marked.
   */
  adoptBlock (index: number, memory: BlockMemory): void {
    const block: Block = { index, memory, allocator: new RunAllocator(memory.buffer.byteLength), dedicated: false }
    this.blocks.set(index, block)
    this.reservedBytes += block.allocator.size
    this.nextIndex = Math.max(this.nextIndex, index + 1)
  }

  /** Mark an allocation of an adopted image as taken. Throws RangeError when it is not free (an overlap). */
  adoptAllocation (block: number, offset: number, length: number): Allocation {
    const b = this.blocks.get(block)
    if (b === undefined || !b.allocator.reserve(offset, length)) throw new RangeError(`${length} bytes at ${block}:${offset} are not free`)
    this.usedBytes += alignUp(length)
    return { block, offset, length: alignUp(length) }
  }

  /**
   * After adoption: a block larger than blockSize that one image fills was made for it (dedicated, released
   * with it); one that holds several images stays shared (the previous server had a larger blockSize).
   * Empty blocks are given back when dedicated-sized or beyond capacity.
   */
  finishAdoption (): void {
    for (const b of [...this.blocks.values()]) {
      const large = b.allocator.size > this.blockSize
      if (b.allocator.isEmpty && (large || this.reservedBytes > this.capacity)) {
        this.dropBlock(b)
      } else if (large && b.allocator.allocationCount === 1 && b.allocator.lengthOf(0) === b.allocator.size) {
        this.blocks.set(b.index, { ...b, dedicated: true })
      }
    }
  }

  /**
   * Release every block. The arena is unusable afterwards. `keep`: leave the provider's memory in place
   * (shared-memory segments stay for the next server to adopt).
   */
  close (keep = false): void {
    if (!keep) for (const block of [...this.blocks.values()]) this.dropBlock(block)
    this.blocks.clear()
    this.provider.close(keep)
  }

  stats (): ArenaStats {
    let dedicated = 0
    let largestInBlocks = 0
    for (const b of this.blocks.values()) {
      if (b.dedicated) dedicated++
      else largestInBlocks = Math.max(largestInBlocks, b.allocator.largestFreeRun)
    }
    return {
      provider: this.provider.kind,
      blockSize: this.blockSize,
      capacity: this.capacity,
      blocks: this.blocks.size,
      dedicatedBlocks: dedicated,
      reserved: this.reservedBytes,
      used: this.usedBytes,
      free: this.capacity - this.usedBytes,
      largestFreeRun: Math.max(largestInBlocks, this.headroom(true)),
    }
  }

  /** Bytes a new block could have: capacity not yet reserved, counting empty shared blocks as reclaimable. */
  private headroom (countEmpty: boolean): number {
    let reclaimable = 0
    if (countEmpty) for (const b of this.blocks.values()) if (!b.dedicated && b.allocator.isEmpty) reclaimable += b.allocator.size
    return this.capacity - this.reservedBytes + reclaimable
  }

  private rowsThatFit (rowBytes: number, wanted: number): number {
    let best = Math.min(this.headroom(true), this.blockSize)
    for (const b of this.blocks.values()) if (!b.dedicated) best = Math.max(best, b.allocator.largestFreeRun)
    let k = Math.min(wanted, Math.floor(best / rowBytes))
    while (k > 0 && alignUp(k * rowBytes) > best) k--
    return k
  }

  private take (block: Block, need: number): Allocation {
    const offset = block.allocator.allocate(need)
    this.usedBytes += need
    return { block: block.index, offset, length: need }
  }

  private allocateDedicated (need: number): Allocation | null {
    if (!this.ensureHeadroom(need)) return null
    const block = this.addBlock(need, true)
    return this.take(block, need)
  }

  private newSharedBlock (need: number): Block | null {
    // The last block may be smaller than blockSize when capacity does not allow a full one.
    if (!this.ensureHeadroom(need)) return null
    const size = Math.max(need, Math.min(this.blockSize, this.capacity - this.reservedBytes))
    return this.addBlock(size, false)
  }

  /** Make `need` bytes of unreserved capacity, releasing empty shared blocks if that is what it takes. */
  private ensureHeadroom (need: number): boolean {
    if (this.capacity - this.reservedBytes >= need) return true
    if (this.headroom(true) < need) return false
    for (const b of [...this.blocks.values()]) {
      if (this.capacity - this.reservedBytes >= need) break
      if (!b.dedicated && b.allocator.isEmpty) this.dropBlock(b)
    }
    return this.capacity - this.reservedBytes >= need
  }

  private addBlock (size: number, dedicated: boolean): Block {
    const memory = this.provider.allocate(size)
    const block: Block = { index: this.nextIndex++, memory, allocator: new RunAllocator(size), dedicated }
    this.blocks.set(block.index, block)
    this.reservedBytes += size
    return block
  }

  private dropBlock (block: Block): void {
    this.blocks.delete(block.index)
    this.reservedBytes -= block.allocator.size
    this.provider.release(block.memory)
  }

  private capacityError (length: number): Error {
    return pxpError('PXP_ERR_CAPACITY', length, this.usedBytes, this.capacity)
  }
}
