/**
 * The commit relay: how the server's process learns of commits made by other processes.
 *
 * A writer in another process cannot Atomics.notify anyone here. After each commit it adds 1 to the table's
 * EXTERNAL_COMMITS word and futex-wakes it. One thread of ours sits in a futex wait on that word; when it
 * moves, the thread finds the slots whose GENERATION changed, Atomics.notify-s each (waitForChange in worker
 * threads) and bumps COMMIT_SEQ (the store's commit watcher, which announces 'updated').
 *
 * A thread rather than a poll: an idle server costs nothing, and the in-process waiters of a commit made next
 * door are woken within microseconds instead of a poll period. It is one thread however many processes
 * attach, and the in-process hot path is untouched (in-process writers never touch EXTERNAL_COMMITS).
 *
 * The thread runs a few lines of plain JavaScript (an eval'd worker), so it starts the same from source,
 * under a TypeScript loader or from dist/.
 */
import { Worker } from 'node:worker_threads'
import { HEADER, HEADER_WORDS, SLOT, SLOT_WORDS } from '../../protocol/layout.js'
import type { ShmAddon } from '../../shm/addon.js'
import type { ImageTable } from '../store/image-table.js'

/**
 * Longest single futex wait. A thread blocked in a futex cannot be terminated, and process exit waits for
 * it, so it looks at its stop flag at least this often even if the wake-up at close or exit were missed.
 */
const WAIT_SLICE_MS = 500

const RELAY_SOURCE = `
const { workerData } = require('node:worker_threads')
const { addonPath, table, tableWords, capacity, stop, header, slotWords, generation, external, commitSeq, highWater, sliceMs } = workerData
const addon = require(addonPath)
const words = new Int32Array(table, 0, tableWords)
const halt = new Int32Array(stop)
const last = new Int32Array(capacity)
function scan (notify) {
  const slots = Math.min(last.length, Atomics.load(words, highWater))
  let changed = false
  for (let s = 0; s < slots; s++) {
    const at = header + s * slotWords + generation
    const g = Atomics.load(words, at)
    if (g === last[s]) continue
    last[s] = g
    if (notify) { Atomics.notify(words, at); changed = true }
  }
  if (changed) { Atomics.add(words, commitSeq, 1); Atomics.notify(words, commitSeq) }
}
let seen = Atomics.load(words, external)
scan(false)
while (Atomics.load(halt, 0) === 0) {
  addon.futexWait(table, external * 4, seen, sliceMs)
  const now = Atomics.load(words, external)
  if (now !== seen) { seen = now; scan(true) }
}
`

export class CommitRelay {
  private readonly worker: Worker
  private readonly halt = new Int32Array(new SharedArrayBuffer(4))
  private readonly exited: Promise<void>
  private readonly onExit = (): void => this.signalStop()
  private stopped = false

  /** Start the relay thread on `table` (which must be in shared memory). */
  constructor (private readonly table: ImageTable, private readonly addon: ShmAddon, addonPath: string) {
    this.worker = new Worker(RELAY_SOURCE, {
      eval: true,
      // A plain-JS thread: no TypeScript loader, no coverage hooks.
      execArgv: [],
      env: {},
      workerData: {
        addonPath,
        table: table.buffer,
        tableWords: table.words.length,
        capacity: table.maxSlots,
        stop: this.halt.buffer,
        header: HEADER_WORDS,
        slotWords: SLOT_WORDS,
        generation: SLOT.GENERATION,
        external: HEADER.EXTERNAL_COMMITS,
        commitSeq: HEADER.COMMIT_SEQ,
        highWater: HEADER.HIGH_WATER,
        sliceMs: WAIT_SLICE_MS,
      },
    })
    // It must never keep the process alive, and at exit it must be woken or exit would wait for it.
    this.worker.unref()
    process.once('exit', this.onExit)
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()))
    this.worker.on('error', (err) => process.emitWarning(`pixelport commit relay failed: ${err.message}`))
  }

  /** Stop the thread and wait for it to end. Idempotent. */
  async close (): Promise<void> {
    this.signalStop()
    process.off('exit', this.onExit)
    // Waiting for an unref'd thread would not keep the event loop alive: the caller's await would just end.
    this.worker.ref()
    await this.exited
  }

  private signalStop (): void {
    if (this.stopped) return
    this.stopped = true
    Atomics.store(this.halt, 0, 1)
    // Move the word too: a thread between its check and its wait then does not sleep at all.
    Atomics.add(this.table.words, HEADER.EXTERNAL_COMMITS, 1)
    this.addon.futexWake(this.table.buffer, HEADER.EXTERNAL_COMMITS * 4)
  }
}
