/**
 * Worker threads that die inside write(), holding the write lock with the seqlock open: by process.exit, or
 * by worker.terminate() while the write runs. (An exception thrown inside write() is not a crash: write
 * unlocks in a finally; an uncaught one elsewhere cannot hold the lock, which is only held synchronously.)
 * The lock is freed and the seqlock closed as soon as the thread is gone — lockTimeoutMs is a minute, so
 * the next writer cannot have waited it out — the memory of an image deleted meanwhile is freed, and other
 * workers reading and writing at the same time see nothing of it.
 */
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { startServer } from '../helpers/server.js'
import { BYSTANDER_FRAMES, bystanders, holdDoomed, recovered, SLOT, startCrashingWorker, word } from '../helpers/crashing-worker.js'
import { until } from '../helpers/until.js'

for (const how of ['exit', 'terminate'] as const) {
  t.test(`a worker that dies by ${how} inside write() frees the lock at once`, async (t) => {
    const { server } = await startServer(t, { lockTimeoutMs: 60_000 })
    const [others, survivor, w] = await Promise.all([bystanders(server), startAgent(server), startCrashingWorker(server)])
    server.store.create({ id: 'victim', width: 32, height: 32, mode: 'L' })
    await survivor.call('open', 'victim')
    await survivor.call('fill', 'victim', 1)
    await w.call('open', 'victim')
    const baseline = await holdDoomed(t, server, w)

    const traffic = others.run()
    // 'exit' dies by itself inside write(); 'spin' stays inside until terminated.
    const stalled = w.call('stallInWrite', 'victim', 99, how === 'exit' ? 'exit' : 'spin').catch(() => {})
    await w.inside
    if (how === 'terminate') {
      t.not(word(server, 'victim', SLOT.WRITE_LOCK), 0, 'the worker holds the lock')
      t.equal(word(server, 'victim', SLOT.SEQ) & 1, 1, 'mid-write: the seqlock is open')
      await w.worker.terminate()
    }
    await stalled
    t.equal(await w.exited, how === 'exit' ? 7 : 1, `the worker died (${how})`)
    await recovered(server, 3)

    // Without recovery the writes below would wait out the minute-long timeout: fail now instead.
    if (!t.equal(word(server, 'victim', SLOT.WRITE_LOCK), 0, 'lock recovered')) return
    t.equal(word(server, 'victim', SLOT.SEQ) & 1, 0, 'seqlock closed')
    t.equal(word(server, 'victim', SLOT.LEASES), 1, 'only the survivor\'s lease is left')
    t.equal(server.store.generation('victim'), 2, 'the interrupted write became a generation')
    // Another worker takes the lock now (the timeout is a minute: it cannot have waited it out).
    t.equal(await survivor.call('fill', 'victim', 5), 3, 'another worker writes at once')
    t.same(await survivor.call('readUniform', 'victim'), [5, 5])
    t.equal((await server.store.write('victim', new Uint8Array(1024).fill(6))).generation, 4, 'so does the server')

    await until(() => server.store.stats().retired === 0, { what: 'the deleted image to be freed' })
    t.equal(server.store.stats().used, baseline, 'the deleted image\'s memory is back')
    const { torn, last } = await traffic
    t.equal(torn, 0, 'the bystander reader never saw a torn frame')
    t.equal(last, BYSTANDER_FRAMES, 'every bystander write committed exactly once')
  })
}
