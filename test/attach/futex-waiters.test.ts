/**
 * Asynchronous futex waits (client/attach/futex-waiters.ts): in the kernel through the addon's
 * futexWaitAsync (io_uring, one wake-up of the event loop) where it can, in helper threads otherwise
 * (PIXELPORT_FUTEX_HELPERS=1 forces them). Both must answer a wake, a timeout and a changed word, and close
 * must answer what is pending. A wake from another process is the attach tests' (test/attach, bench:shm).
 */
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { FutexWaiters } from '../../client/attach/futex-waiters.js'
import { shmAddon } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const loaded = shmAddon(t)

if (loaded !== null) {
  const { addon, path } = loaded
  // Pending waits do not keep the process alive (in real use an attached store's socket does): this does.
  const keep = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keep))

  t.test('the addon waits in the kernel: woken, timed out, not equal, bad arguments', { skip: typeof addon.futexWaitAsync !== 'function' ? 'an addon build without futexWaitAsync' : false }, async (t) => {
    const sab = new SharedArrayBuffer(16)
    const words = new Int32Array(sab)
    const wait = (offset: number, expected: number, timeoutMs: number): { submitted: boolean, result: Promise<string> } => {
      let submitted = false
      const result = new Promise<string>((resolve) => { submitted = addon.futexWaitAsync!(sab, offset, expected, timeoutMs, resolve) })
      return { submitted, result }
    }
    const probe = wait(4, 1, 0)
    if (!probe.submitted) {
      t.comment('io_uring futex waits are unavailable here (Linux before 6.7, or io_uring disabled): helper threads only')
      return
    }
    t.equal(await probe.result, 'not-equal', 'a word that differs answers at once')
    t.equal(await wait(4, 0, 30).result, 'timed-out', 'nobody wakes: the timeout answers')
    const woken = wait(8, 0, 20_000)
    t.ok(woken.submitted)
    // Woken by a futex wake (here from this process: a shared futex, as from any other).
    let count = 0
    while (count === 0) {
      Atomics.store(words, 2, 1)
      count = addon.futexWake(sab, 8)
      if (count === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    t.equal(await woken.result, 'ok')
    const many = Array.from({ length: 20 }, () => wait(12, 0, 20_000))
    t.ok(many.every((w) => w.submitted), 'twenty waits at once')
    Atomics.store(words, 3, 1)
    addon.futexWake(sab, 12)
    t.same(new Set(await Promise.all(many.map((w) => w.result))), new Set(['ok']), 'one wake answers all of them')
    t.throws(() => addon.futexWaitAsync!(sab, 2, 0, 0, () => {}), RangeError, 'unaligned')
    t.throws(() => addon.futexWaitAsync!(sab, 16, 0, 0, () => {}), RangeError, 'past the end')
    t.throws(() => addon.futexWaitAsync!(sab, 0, 0, 0, undefined as unknown as () => void), TypeError, 'no callback')
  })

  t.test('a worker thread that waits in the kernel and ends takes its ring with it', async (t) => {
    const sab = new SharedArrayBuffer(8)
    const worker = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads')
      const addon = require(workerData.path)
      const ok = addon.futexWaitAsync?.(workerData.sab, 0, 0, 60000, () => {}) ?? false
      parentPort.postMessage(ok)
      setTimeout(() => process.exit(0), 20)
    `, { eval: true, workerData: { path, sab } })
    worker.on('error', (err) => t.fail(err.message))
    const [submitted] = await Promise.all([new Promise((resolve) => worker.once('message', resolve)), new Promise((resolve) => worker.once('exit', resolve))])
    t.comment(`kernel wait in the worker: ${String(submitted)}`)
    t.pass('the worker ended with a wait pending, and this process goes on')
  })

  for (const helpers of [false, true]) {
    t.test(`FutexWaiters ${helpers ? 'in helper threads' : 'in the kernel where it can'}: wake, timeout, change, close`, async (t) => {
      const before = process.env.PIXELPORT_FUTEX_HELPERS
      if (helpers) process.env.PIXELPORT_FUTEX_HELPERS = '1'
      const waiters = new FutexWaiters(addon, path, new SharedArrayBuffer(20))
      if (before === undefined) delete process.env.PIXELPORT_FUTEX_HELPERS
      else process.env.PIXELPORT_FUTEX_HELPERS = before
      t.teardown(() => waiters.close())
      const buffer = (waiters as unknown as { buffer: SharedArrayBuffer }).buffer
      const words = new Int32Array(buffer)
      // Word 4 counts the waiters, as FUTEX_WAITERS does for a slot: up while one waits, down once it is back.
      const COUNTER = 4

      const started = performance.now()
      const timing = waiters.wait(0, 0, 40, COUNTER)
      t.equal(Atomics.load(words, COUNTER), 1, 'the waiter is counted before it sleeps')
      await timing
      t.ok(performance.now() - started >= 30, 'nobody wakes: back after the timeout')
      t.equal(Atomics.load(words, COUNTER), 0, 'and no longer counted')
      Atomics.store(words, 0, 5)
      await waiters.wait(0, 0, 20_000, COUNTER)
      t.pass('a changed word: back at once')

      // The word stays 0: only a wake (not a change) can end this wait before its 20 s. A helper thread may
      // not be asleep yet when first woken, hence the repeats.
      const woken = waiters.wait(4, 0, 20_000, COUNTER)
      let settled = false
      void woken.then(() => { settled = true })
      t.equal(Atomics.load(words, COUNTER), 1)
      await until(() => { waiters.interrupt(4); return settled }, { what: 'the wait to be woken', timeout: 10_000, interval: 5 })
      t.pass('woken by a futex wake')
      t.equal(Atomics.load(words, COUNTER), 0, 'counted down exactly once, though woken more than once')

      const pending = waiters.wait(8, 0, 20_000, COUNTER)
      waiters.close()
      await pending
      t.pass('close answers a pending wait')
      t.equal(Atomics.load(words, COUNTER), 0)
      await waiters.wait(8, 0, 10, COUNTER)
      t.pass('after close a wait returns (callers re-check and give up)')
    })
  }
}
