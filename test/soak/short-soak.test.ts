/**
 * The soak (bench/soak) in small: a few seconds of HTTP and WebSocket clients and worker writers at once.
 * Zero violations — every frame whole and of its own generation, no stale or lost acknowledged write, the
 * memory back where it started — and proof that work actually happened. First, that the checks can fail.
 */
import t from 'tap'
import { Ledger } from '../../bench/soak/checks.js'
import { checkFrame, makeFrame } from '../../bench/soak/frames.js'
import { runSoak } from '../../bench/soak/engine.js'

t.test('the soak checks catch torn, stale, mislabelled and invented frames', async (t) => {
  const [w, h] = [64, 32]
  const v3 = makeFrame(w, h, 3, 9)
  const v4 = makeFrame(w, h, 4, 9)
  t.match(checkFrame(v3, w, h), { ok: true, version: 3, tag: 9, blank: false })
  t.match(checkFrame(new Uint8Array(w * h), w, h), { ok: true, version: 0, blank: true })
  const torn = v3.slice()
  torn.set(v4.subarray(w * 10), w * 10)
  t.match(checkFrame(torn, w, h), { ok: false, reason: /torn: row 10/ })
  const flipped = v3.slice()
  flipped[w * 5 + 20] ^= 1
  t.match(checkFrame(flipped, w, h), { ok: false, reason: /corrupt/ })
  const ledger = new Ledger()
  const image = { id: 'x', width: w, height: h }
  ledger.checkRead('read', image, v3, 3, 3, 4)
  t.same(ledger.violations, [], 'a good read passes')
  ledger.checkRead('read', image, torn, 3)
  ledger.checkRead('read', image, v3, 4)
  ledger.checkRead('read', image, v3, 3, 4)
  ledger.checkRead('read', image, v4, 4, 3, 3)
  t.equal(ledger.torn, 1)
  t.match(ledger.violations, [/torn/, /version 3 delivered as generation 4/, /stale read/, /never written/])
})

t.test('a short soak, hostile client included: no violations, memory returned, and every kind of work done', async (t) => {
  const report = await runSoak({ seconds: 5, http: 3, ws: 3, workers: 2, hostile: 1 })
  t.same(report.violations, [], 'no violations')
  t.equal(report.torn, 0, 'no torn frame delivered')
  t.same(report.memory.end, report.memory.start, 'memory, snapshots, staging and connections back to the start')
  const ops = new Map(report.operations.map((o) => [o.op, o.count]))
  for (const op of ['http create (POST raw)', 'http overwrite (PUT)', 'http get data', 'http delete', 'ws create (chunked put)', 'ws overwrite (chunked put)', 'ws get']) {
    t.ok((ops.get(op) ?? 0) > 0, `${op}: done at least once`)
  }
  t.ok(report.workerCommits > 0, 'worker writers committed')
  t.ok(report.eventsReceived > 0, 'subscribers received events')
  t.ok(report.framesChecked > report.eventsReceived / 2, 'frames were verified')
  t.same(Object.keys(report.errors).filter((c) => c !== 'PXP_ERR_NOT_FOUND'), [], 'no error but reads racing a delete')
  const attacks = Object.keys(report.attacks)
  t.ok(attacks.length >= 3, `hostile attempts were made and answered as documented: ${attacks.join('; ')}`)
  t.notOk(attacks.some((a) => a.includes('unexpected')), 'every attack got its documented answer')
})
