/**
 * Issue 12 item 6: a user's worker that throws must not take the server down. README's worker example, run
 * as written, throws (`render` is not defined); a Worker's 'error' with no listener used to be thrown in
 * the server's process. Now the error is logged with the module's name, `workerError` is emitted, what the
 * thread held (pin, loan, write lock) is recovered and the server keeps serving — through spawnWorker and
 * through the real CLI's --worker.
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import { SLOT, slotBase } from '../../protocol/layout.js'
import type { PixelportServer } from '../../server/server.js'
import type { WorkerErrorEvent } from '../../server/workers/bridge.js'
import { serveCli } from '../helpers/cli.js'
import { repoPath } from '../helpers/paths.js'
import { until } from '../helpers/until.js'
import { startServer } from '../helpers/server.js'

const FIXTURE = pathToFileURL(repoPath('test/fixtures/throwing-worker.mjs'))

function words (server: PixelportServer, id: string): { lock: number, pins: number[] } {
  const w = server.store.table.words
  const base = slotBase(server.store.slotOf(id))
  return { lock: Atomics.load(w, base + SLOT.WRITE_LOCK), pins: [0, 1, 2].map((f) => Atomics.load(w, base + SLOT.PINS + f)) }
}

t.test('spawnWorker: a module that throws is reported, recovered, and the server keeps serving', async (t) => {
  // A minute-long lock timeout: a write that succeeds below cannot have waited out a lock nobody freed.
  const { server, url } = await startServer(t, { lockTimeoutMs: 60_000 })
  const errors: WorkerErrorEvent[] = []
  const reported = new Promise<WorkerErrorEvent>((resolve) => server.on('workerError', (e) => { errors.push(e); resolve(e) }))
  const stderr: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr.push(String(chunk))
    return (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest)
  }) as typeof process.stderr.write
  t.teardown(() => { process.stderr.write = write })

  // No 'error' listener of our own on the Worker: before the fix, this was fatal for the whole process.
  const worker = server.spawnWorker(FIXTURE, { workerData: { prefix: 'thrower' } })
  // Not events.once: it rejects on 'error', and the thread's error and its last message travel on different
  // ports, so on a loaded machine the error may be delivered first (the message still arrives).
  const holding = await new Promise<{ holding: boolean }>((resolve) => worker.once('message', resolve))
  t.ok(holding.holding, 'the worker holds a pin, a loan and the write lock')
  const event = await reported
  t.equal(event.module, fileURLToPath(FIXTURE), 'the event names the module')
  t.match(event.error.message, /render is not defined/)
  t.equal(errors.length, 1)
  t.match(stderr.join(''), new RegExp(`worker ${fileURLToPath(FIXTURE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} failed: ReferenceError: render is not defined`), 'logged with the module name')

  await until(() => server.workers.stats().connections === 0, { what: 'the thrown worker\'s connection to be recovered' })
  t.equal(words(server, 'thrower/plain').lock, 0, 'the write lock is released')
  t.same(words(server, 'thrower/frames').pins.filter((p) => p !== 0), [], 'no pin or loan is left')
  t.equal(Atomics.load(server.store.table.words, slotBase(server.store.slotOf('thrower/frames')) + SLOT.LEASES), 0, 'no lease is left')

  const put = await fetch(`${url}/images/thrower%2Fplain/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(64).fill(7) })
  t.equal(put.status, 200, 'the server takes a write on the image whose lock the worker held')
  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200, 'and keeps answering')
})

t.test('pixelport serve --worker: a module that throws is logged and the server keeps serving', async (t) => {
  const served = await serveCli(t, ['--worker', fileURLToPath(FIXTURE), '--worker-restarts', '1'])
  await until(() => /worker \S*throwing-worker\.mjs failed: ReferenceError: render is not defined/.test(served.output()), { what: 'the worker\'s failure to be logged', timeout: 15_000 })
  // Restarted once with backoff (the module deletes and re-creates its images), then left down.
  await until(() => /not restarted again \(1 restarts\)/.test(served.output()), { what: 'one restart and then none', timeout: 15_000 })
  t.match(served.output(), /restarting in 1000 ms \(1 of 1\)/, 'restarted after the first backoff')
  t.equal(served.child.exitCode, null, 'the server process is still running')
  const put = await fetch(`${served.url}/images/thrower%2F0%2Fplain/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(64).fill(9) })
  t.equal(put.status, 200, 'the write lock the worker held was released (no 5 s wait, no PXP_ERR_LOCK_TIMEOUT)')
  const list = await (await fetch(`${served.url}/images`)).json() as { images: Array<{ id: string }> }
  t.same(list.images.map((d) => d.id).sort(), ['thrower/0/frames', 'thrower/0/plain'], 'the server still answers')
})
