// Shared memory across a real worker thread, real separate Node processes and a real Python process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { setImmediate as tick } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { ShmBlockProvider } from '../../server/memory/shm-provider.js'
import { shmPath } from '../../shm/names.js'
import { settle } from '../helpers/atomics.js'
import { repoPath } from '../helpers/paths.js'
import { ADDON_CHILD, plainEnv, runAddonChild, runChild, shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const loaded = shmAddon(t)
// The subtests mostly wait for child processes to start; each has its own segments, so run a few at once.
t.jobs = 3
const PYTHON = '/usr/bin/python3'

// Int32 slots shared with test/fixtures/shm-addon-child.mjs.
const WORD = 0
const READY = 1
const GO = 2
const STAMP = 2 // BigInt64 index

function parse (stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop() as string)
}

if (loaded !== null) {
  const { addon, path: addonPath } = loaded

  t.test('a worker thread shares the block: posted buffer and its own mapping by name', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(64 * 1024)
    const view = new Int32Array(block.buffer)
    const ownName = `/${provider.prefix}-worker-own`
    const worker = new Worker(repoPath('test/fixtures/shm-worker.mjs'), {
      workerData: { addonPath, sab: block.buffer, name: block.name, ownName },
      execArgv: [], // a plain-JS worker: skip the test runner's TypeScript loader
    })
    // The worker's Atomics.notify wakes this in-process waiter (same process: V8's own wait list works).
    const woke = Atomics.waitAsync(view, 0, 0, 10_000)
    const message = await new Promise<{ own: SharedArrayBuffer, seenByName: number }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    t.equal(await settle(woke), 'ok', 'Atomics.notify from the worker woke the main thread')
    t.equal(Atomics.load(view, 0), 5, 'the worker\'s Atomics.add on the posted buffer')
    t.equal(Atomics.load(view, 1), 99, 'the worker\'s write through its own mapping by name')
    t.equal(message.seenByName, 5, 'the worker\'s mapping by name sees the posted buffer\'s writes')
    t.equal(new Int32Array(message.own)[0], 4242, 'a segment created in the worker is readable here')
    t.equal(await new Promise((resolve) => worker.once('exit', resolve)), 0)
    addon.unlink(ownName)
  })

  t.test('a separate Node process maps the segment by name and writes what the parent reads', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(1024 * 1024)
    const view = new Int32Array(block.buffer)
    view[10] = 31337
    const child = await runAddonChild(addonPath, ['write', block.name as string, '10', '-8'])
    t.equal(child.code, 0, child.stderr)
    t.same(parse(child.stdout), { byteLength: 1024 * 1024, seen: 31337 })
    t.equal(Atomics.load(view, 11), -8, 'the child\'s write is in the parent\'s buffer')
  })

  t.test('Atomics.add from two processes at once loses no increment', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(4096)
    const view = new Int32Array(block.buffer)
    const times = 1_000_000
    const child = runAddonChild(addonPath, ['count', block.name as string, String(times)])
    await until(() => Atomics.load(view, READY) === 1, { what: 'the child to be ready' })
    Atomics.store(view, GO, 1)
    for (let i = 0; i < times; i++) Atomics.add(view, WORD, 1)
    const done = await child
    t.equal(done.code, 0, done.stderr)
    t.equal(Atomics.load(view, WORD), 2 * times)
  })

  t.test('futexWake in this process wakes a futexWait in another', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(4096)
    const view = new Int32Array(block.buffer)
    const stamps = new BigInt64Array(block.buffer)
    const child = runAddonChild(addonPath, ['wait', block.name as string, '0', '20000'])
    await until(() => Atomics.load(view, READY) === 1, { what: 'the child to be ready' })
    // The child may not be inside the wait yet: wake until the kernel reports it woke someone. The word
    // never changes, so 'ok' can only come from a wake, never from 'not-equal'.
    let woken = 0
    const deadline = Date.now() + 10_000
    while (woken === 0 && Date.now() < deadline) {
      Atomics.store(stamps, STAMP, process.hrtime.bigint())
      woken = addon.futexWake(block.buffer, WORD * 4, 1)
      if (woken === 0) await tick()
    }
    t.equal(woken, 1, 'one waiter woken')
    const done = await child
    t.equal(done.code, 0, done.stderr)
    const reply = parse(done.stdout) as { result: string, elapsedMs: number, wakeLatencyUs: number }
    t.equal(reply.result, 'ok')
    t.ok(reply.elapsedMs < 20_000, 'woken well before its timeout')
    t.comment(`cross-process futex wake latency: ${reply.wakeLatencyUs.toFixed(1)} µs`)
  })

  t.test('a waiter in another process times out when nobody wakes it, and sees a changed word at once', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(4096)
    const timedOut = await runAddonChild(addonPath, ['wait', block.name as string, '0', '100'])
    t.equal(timedOut.code, 0, timedOut.stderr)
    const reply = parse(timedOut.stdout) as { result: string, elapsedMs: number }
    t.equal(reply.result, 'timed-out')
    t.ok(reply.elapsedMs >= 99, `waited ${reply.elapsedMs.toFixed(1)} ms`)

    Atomics.store(new Int32Array(block.buffer), WORD, 1)
    const notEqual = await runAddonChild(addonPath, ['wait', block.name as string, '0', '20000'])
    t.equal((parse(notEqual.stdout) as { result: string }).result, 'not-equal')
  })

  t.test('an addon loaded only in a worker outlives the worker (no crash when its buffers are collected)', async (t) => {
    const name = `/${testPrefix(t)}-wo`
    const child = await runAddonChild(addonPath, ['worker-only', name])
    t.equal(child.signal, null, 'not killed by a signal')
    t.equal(child.code, 0, child.stderr)
    t.same(parse(child.stdout), { seen: 1234, collected: true })
    t.notOk(existsSync(shmPath(name)))
  })

  t.test('a child killed while waiting leaves the parent unaffected', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(4096)
    const view = new Int32Array(block.buffer)
    const child = spawn(process.execPath, [ADDON_CHILD, addonPath, 'wait', block.name as string, '0', 'Infinity'], { stdio: 'ignore', env: plainEnv() })
    await until(() => Atomics.load(view, READY) === 1, { what: 'the child to be ready' })
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    child.kill('SIGKILL')
    t.equal(await exited, 'SIGKILL')
    t.equal(addon.futexWake(block.buffer, 0), 0, 'no waiter left behind')
    view[0] = 1
    t.equal(view[0], 1)
  })

  t.test('numpy in a Python process maps the segment and sees the same bytes, both ways', async (t) => {
    const probe = await runChild(PYTHON, ['-c', 'import numpy'])
    if (probe.code !== 0) {
      t.pass('numpy interop', { skip: `${PYTHON} has no numpy (apt-get install -y python3-numpy)` })
      return
    }
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const block = provider.allocate(256 * 1024)
    const pixels = new Uint16Array(block.buffer, 4096, 100 * 100)
    for (let i = 0; i < pixels.length; i++) pixels[i] = i * 7
    const script = `
import sys, numpy as np
path, offset = sys.argv[1], int(sys.argv[2])
a = np.memmap(path, dtype=np.uint16, mode='r+', offset=offset, shape=(100, 100))
expected = (np.arange(10000, dtype=np.uint32) * 7).astype(np.uint16).reshape(100, 100)
assert np.array_equal(a, expected), 'pixels differ'
a[99, 99] = 4321
a.flush()
print(int(a.sum(dtype=np.uint64)))
`
    const py = await runChild(PYTHON, ['-c', script, shmPath(block.name as string), '4096'])
    t.equal(py.code, 0, py.stderr)
    t.equal(pixels[9999], 4321, 'the Python write is visible to Node')
    let sum = 0
    for (const p of pixels) sum += p
    t.equal(Number(py.stdout.trim()), sum, 'Python summed the same pixels')
  })
}
