/**
 * Asynchronous futex waits for an attached process. A futex wait blocks its thread, and the main thread must
 * not block. Where the kernel can wait on a futex for us (io_uring, Linux 6.7+: the addon's futexWaitAsync),
 * a change wakes this thread's event loop directly: one wake-up, like a blocking wait. Elsewhere each
 * pending wait runs in a small helper thread that sleeps in the kernel and reports back through an
 * Atomics.notify the main thread's Atomics.waitAsync sees (same process): two wake-ups, about 1.7x the
 * latency. Threads are kept and reused; a process waiting on more images at once than MAX_THREADS falls
 * back to short polls for the rest.
 *
 * The helper is a few lines of plain JavaScript (an eval'd worker): it starts the same from source, under a
 * TypeScript loader or from dist/.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import type { ShmAddon } from '../../shm/addon.js'

/** Most helper threads; each costs a few MB and starts in tens of milliseconds. */
const MAX_THREADS = 16
/**
 * Longest single futex wait of a helper. A thread blocked in a futex cannot be terminated and process exit
 * waits for it, so it comes back at least this often (the caller just waits again).
 */
const SLICE_MS = 500
/** Poll period when every helper is busy. */
const POLL_MS = 1

// Control words shared with a helper thread.
const STATE = 0
const OFFSET = 1
const EXPECTED = 2
const TIMEOUT = 3
/** Non-zero: the helper ends at its next look (a busy one after its futex wait returns). */
const HALT = 4
const CTL_WORDS = 5
const IDLE = 0
const REQUEST = 1
const DONE = 2
const STOP = 3

const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads')
const addon = require(workerData.addonPath)
const table = workerData.table
const ctl = new Int32Array(workerData.ctl)
while (Atomics.load(ctl, ${HALT}) === 0) {
  const state = Atomics.load(ctl, ${STATE})
  if (state !== ${REQUEST}) {
    Atomics.wait(ctl, ${STATE}, state)
    continue
  }
  addon.futexWait(table, ctl[${OFFSET}], ctl[${EXPECTED}], ctl[${TIMEOUT}])
  Atomics.store(ctl, ${STATE}, ${DONE})
  Atomics.notify(ctl, ${STATE})
}
// Halted before it got to a request (e.g. closed while still starting): answer it, so no caller hangs.
if (Atomics.compareExchange(ctl, ${STATE}, ${REQUEST}, ${DONE}) === ${REQUEST}) Atomics.notify(ctl, ${STATE})
`

interface Helper {
  worker: Worker
  ctl: Int32Array
  alive: boolean
}

export class FutexWaiters {
  private readonly idle: Helper[] = []
  private readonly busy = new Set<Helper>()
  private threads = 0
  private exitHooked = false
  private closed = false
  private readonly onExit = (): void => this.stopAll()
  /** The addon can wait in the kernel (io_uring); false once it said it cannot. */
  private kernelWaits: boolean
  /**
   * Kernel waits pending, by word: how to end each one. An interrupt or close ends them here, at once: the
   * kernel's completion reaches this thread through the event loop, which may already be allowed to exit
   * (a closing store drops what kept it alive), and a wait left pending then would never settle.
   */
  private readonly kernelPending = new Map<number, Set<() => void>>()

  private readonly words: Int32Array

  constructor (private readonly addon: ShmAddon, private readonly addonPath: string, private readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer)
    this.kernelWaits = typeof addon.futexWaitAsync === 'function' && process.env.PIXELPORT_FUTEX_HELPERS !== '1'
  }

  /**
   * Resolve once the int32 at `byteOffset` of the buffer may differ from `expected` (spurious returns are
   * allowed: callers re-check), or after `timeoutMs` (at most SLICE_MS per call). `counter`: the index of
   * an int32 of the buffer that counts this waiter from before the futex compares until it is woken (so a
   * writer knows to wake it; see protocol/cross-process.ts).
   *
   * Not an async function: a kernel wait's promise is handed back as it is, and its completion settles the
   * count and resolves it in the same callback, so the awaiting code runs in the first microtask after
   * the wake-up, with no async layers of ours in between.
   */
  wait (byteOffset: number, expected: number, timeoutMs: number, counter: number): Promise<void> {
    const slice = Math.max(0, Math.min(timeoutMs, SLICE_MS))
    const words = this.words
    Atomics.add(words, counter, 1)
    const woken = !this.closed && this.kernelWaits ? this.waitInKernel(byteOffset, expected, slice, () => Atomics.sub(words, counter, 1)) : null
    if (woken !== null) return woken
    return this.waitInHelper(byteOffset, expected, slice).finally(() => Atomics.sub(words, counter, 1))
  }

  private async waitInHelper (byteOffset: number, expected: number, slice: number): Promise<void> {
    const helper = this.closed ? null : this.take()
    if (helper === null) {
      await sleep(Math.min(slice, POLL_MS))
      return
    }
    const { ctl } = helper
    ctl[OFFSET] = byteOffset
    ctl[EXPECTED] = expected | 0
    ctl[TIMEOUT] = Math.ceil(slice)
    Atomics.store(ctl, STATE, REQUEST)
    Atomics.notify(ctl, STATE)
    try {
      const res = Atomics.waitAsync(ctl, STATE, REQUEST)
      if (res.async) await res.value
    } finally {
      Atomics.store(ctl, STATE, IDLE)
      this.busy.delete(helper)
      if (this.closed) this.stop(helper)
      else if (helper.alive) this.idle.push(helper)
    }
  }

  /**
   * The wait as an io_uring futex wait, or null when the kernel cannot do it (then never tried again: the
   * helper threads take over).
   */
  private waitInKernel (byteOffset: number, expected: number, slice: number, settle: () => void): Promise<void> | null {
    let resolve!: () => void
    const promise = new Promise<void>((res) => { resolve = res })
    let settled = false
    const done = (): void => {
      if (settled) return
      settled = true
      settle()
      const waiting = this.kernelPending.get(byteOffset)
      waiting?.delete(done)
      if (waiting?.size === 0) this.kernelPending.delete(byteOffset)
      resolve()
    }
    if (this.addon.futexWaitAsync?.(this.buffer, byteOffset, expected | 0, Math.ceil(slice), done) !== true) {
      this.kernelWaits = false
      return null
    }
    let waiting = this.kernelPending.get(byteOffset)
    if (waiting === undefined) this.kernelPending.set(byteOffset, waiting = new Set())
    waiting.add(done)
    return promise
  }

  /** Wake every helper waiting on `byteOffset` (and any other process's waiter there: they re-check). */
  interrupt (byteOffset: number): void {
    this.addon.futexWake(this.buffer, byteOffset)
    // This thread's kernel waits there end now (a spurious return for their callers, who look again).
    for (const done of [...(this.kernelPending.get(byteOffset) ?? [])]) done()
  }

  /** Stop every helper thread; pending waits return. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    process.off('exit', this.onExit)
    this.stopAll()
  }

  private take (): Helper | null {
    let helper = this.idle.pop()
    if (helper === undefined) {
      if (this.threads >= MAX_THREADS) return null
      helper = this.spawn()
    }
    this.busy.add(helper)
    return helper
  }

  private spawn (): Helper {
    const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * Int32Array.BYTES_PER_ELEMENT))
    const worker = new Worker(HELPER_SOURCE, {
      eval: true,
      execArgv: [],
      env: {},
      workerData: { addonPath: this.addonPath, table: this.buffer, ctl: ctl.buffer },
    })
    // Never the reason the process stays alive: whoever waits holds the attach socket instead.
    worker.unref()
    worker.on('error', (err) => process.emitWarning(`pixelport futex helper failed: ${err.message}`))
    const helper: Helper = { worker, ctl, alive: true }
    // However it ended (an error, a failed start), a request it had is answered (the caller looks again),
    // and it is not handed out again.
    worker.once('exit', () => {
      helper.alive = false
      this.threads--
      const i = this.idle.indexOf(helper)
      if (i >= 0) this.idle.splice(i, 1)
      if (Atomics.compareExchange(ctl, STATE, REQUEST, DONE) === REQUEST) Atomics.notify(ctl, STATE)
    })
    this.threads++
    if (!this.exitHooked) {
      this.exitHooked = true
      process.on('exit', this.onExit)
    }
    return helper
  }

  private stopAll (): void {
    // Kernel waits answer when woken; their callers see a spurious return.
    for (const byteOffset of [...this.kernelPending.keys()]) this.interrupt(byteOffset)
    for (const helper of this.idle.splice(0)) this.stop(helper)
    // Busy helpers sleep in a futex: wake them (their callers see a spurious return); they stop on return.
    for (const helper of this.busy) {
      Atomics.store(helper.ctl, HALT, 1)
      this.interrupt(helper.ctl[OFFSET])
    }
  }

  private stop (helper: Helper): void {
    Atomics.store(helper.ctl, HALT, 1)
    // Changing STATE (not only notifying) wakes a helper that is just about to wait on its old value.
    Atomics.store(helper.ctl, STATE, STOP)
    Atomics.notify(helper.ctl, STATE)
  }
}
