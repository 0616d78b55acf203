/**
 * Worker threads that die holding frame buffers: by process.exit, by an uncaught exception, or by
 * worker.terminate() from outside. The pin and the loaned buffer come back (server/store/recovery.ts), the
 * memory of an image deleted meanwhile is freed, and other workers reading and writing at the same time see
 * nothing of it. lockTimeoutMs is a minute here: nothing can pass by waiting a timeout out; a buffer that was
 * not recovered makes `until` (5 s) or the next publish fail.
 */
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { startServer } from '../helpers/server.js'
import { BYSTANDER_FRAMES, bystanders, holdDoomed, recovered, SLOT, startCrashingWorker, word } from '../helpers/crashing-worker.js'
import { until } from '../helpers/until.js'

for (const how of ['exit', 'throw', 'terminate'] as const) {
  t.test(`a worker that dies by ${how} holding a pin and a loan gives both back`, async (t) => {
    const { server } = await startServer(t, { lockTimeoutMs: 60_000 })
    const [others, survivor, w] = await Promise.all([bystanders(server), startAgent(server), startCrashingWorker(server)])
    // Two buffers: the crashed worker pins the front and loans the other, so every buffer is busy.
    server.store.create({ id: 'victim', width: 32, height: 32, mode: 'L', frames: 2 })
    await survivor.call('open', 'victim')
    await survivor.call('loan', 'victim', 1)
    t.equal(await survivor.call('publish', 'victim'), 1)
    await w.call('open', 'victim')
    t.equal(await w.call('holdPin', 'victim'), 1, 'pinned the published frame')
    const loaned = await w.call<number>('holdLoan', 'victim', 200)
    const baseline = await holdDoomed(t, server, w)
    const front = word(server, 'victim', SLOT.FRONT)
    t.equal(word(server, 'victim', SLOT.PINS + front), 1, 'front pinned')
    t.equal(word(server, 'victim', SLOT.PINS + loaned), -1, 'other buffer loaned')
    t.equal(word(server, 'victim', SLOT.LEASES), 2, 'two leases (survivor + crasher)')

    const traffic = others.run()
    if (how === 'terminate') await w.worker.terminate()
    else await w.call('die', how).catch(() => {})
    t.equal(await w.exited, how === 'exit' ? 7 : 1, `the worker died (${how})`)
    await recovered(server, 3)

    const pin = t.equal(word(server, 'victim', SLOT.PINS + front), 0, 'pin recovered')
    const loan = t.equal(word(server, 'victim', SLOT.PINS + loaned), 0, 'loan recovered')
    t.equal(word(server, 'victim', SLOT.LEASES), 1, 'only the survivor\'s lease is left')
    // Without recovery the writes below would wait out the minute-long timeout: fail now instead.
    if (!pin || !loan) return
    t.equal(server.store.generation('victim'), 1, 'the unpublished loan never became a generation')
    t.equal((await survivor.call('read', 'victim')).bytes[0], 1, 'readers still see the last published frame')
    // Both buffers must be loanable again: two publishes cycle through both.
    t.equal(await survivor.call('writeFrames', 'victim', 4), 5, 'the survivor publishes through every buffer')
    t.same(await survivor.call('readUniform', 'victim'), [4, 4])

    await until(() => server.store.stats().retired === 0, { what: 'the deleted image to be freed' })
    t.equal(server.store.stats().used, baseline, 'the deleted image\'s memory is back')
    const { torn, last } = await traffic
    t.equal(torn, 0, 'the bystander reader never saw a torn frame')
    t.equal(last, BYSTANDER_FRAMES, 'every bystander write committed exactly once')
  })
}
