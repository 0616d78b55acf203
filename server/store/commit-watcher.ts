/**
 * Every commit announced once, whoever made it. The store's own writes announce themselves; commits made
 * outside the store (worker threads and attached processes write through shared memory and bump the
 * table's COMMIT_SEQ) are found by one waiter on that one word, woken at most once per event-loop turn
 * however many commits land.
 */
import { HEADER } from '../../protocol/layout.js'
import { generationOf } from '../../protocol/sync.js'
import { rootOf, type ImageRecord } from './records.js'

/** Shortest time between two scans for commits made by other threads. */
const COMMIT_COALESCE_MS = 2

export class CommitWatcher {
  /** Generation last announced per root slot. */
  private readonly announced = new Map<number, number>()
  private stopped = false

  /**
   * @param roots the live root images to scan (views share their root's generation)
   * @param announce told of a root whose generation changed since it was last announced
   */
  constructor (
    private readonly words: Int32Array,
    private readonly roots: () => Iterable<ImageRecord>,
    private readonly announce: (root: ImageRecord) => void,
  ) {}

  /** Start watching (once the records the store starts with are known). */
  start (): void {
    void this.watch()
  }

  /**
   * True once per new generation of `record`'s root: the caller announces it. A commit the watcher has not
   * seen yet is claimed by whoever asks first, so it is never announced twice.
   */
  claim (record: ImageRecord): boolean {
    const root = rootOf(record)
    const generation = generationOf(this.words, root.slot)
    if ((this.announced.get(root.slot) ?? 0) === generation) return false
    this.announced.set(root.slot, generation)
    return true
  }

  /** A restored root: its current generation counts as announced. */
  seen (slot: number): void {
    this.announced.set(slot, generationOf(this.words, slot))
  }

  /** The slot was freed: a later image there starts afresh. */
  forget (slot: number): void {
    this.announced.delete(slot)
  }

  /** End the watch loop. Idempotent. */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    Atomics.notify(this.words, HEADER.COMMIT_SEQ)
  }

  private async watch (): Promise<void> {
    let seen = Atomics.load(this.words, HEADER.COMMIT_SEQ)
    while (!this.stopped) {
      const wait = Atomics.waitAsync(this.words, HEADER.COMMIT_SEQ, seen)
      if (wait.async) await wait.value
      if (this.stopped) return
      seen = Atomics.load(this.words, HEADER.COMMIT_SEQ)
      for (const root of this.roots()) {
        if (generationOf(this.words, root.slot) !== (this.announced.get(root.slot) ?? 0)) this.announce(root)
      }
      // Coalesce bursts: writers notify a word nobody waits on for a moment, which costs them nothing, and
      // the server thread is not woken per commit (events are latest-wins anyway).
      await new Promise((resolve) => setTimeout(resolve, COMMIT_COALESCE_MS))
    }
  }
}
