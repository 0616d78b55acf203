/**
 * Event-loop pressure: readiness and the API answer 503 PXP_ERR_OVERLOADED instead of timing out, liveness
 * keeps answering, and both recover when the pressure is gone.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/until.js'

function blockEventLoop (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* the overload */ }
}

t.test('under pressure: /ready and the API shed load, /healthz stays up, then recover', async (t) => {
  const { url } = await startServer(t, { maxEventLoopDelayMs: 50, pressureSampleMs: 100 })
  await until(async () => (await fetch(url + '/ready')).status === 200, { what: '/ready to answer 200 when idle', interval: 50 })
  t.pass('ready when idle')
  // Stall the loop for several sample windows, then ask while the last sample is still the bad one.
  await new Promise<void>((resolve) => setImmediate(() => { blockEventLoop(600); resolve() }))
  const [notReady, api, health] = await Promise.all([fetch(url + '/ready'), fetch(url + '/images'), fetch(url + '/healthz')])
  t.equal(notReady.status, 503, '/ready says not ready')
  t.equal(api.status, 503)
  const body = await api.json() as { code: string, message: string }
  t.equal(body.code, 'PXP_ERR_OVERLOADED')
  t.match(body.message, /eventLoopDelay/)
  t.equal(api.headers.get('retry-after'), '1')
  t.equal(health.status, 200, 'liveness is not load-shed')
  await until(async () => (await fetch(url + '/ready')).status === 200, { what: '/ready to recover once the loop is free', interval: 50 })
  t.pass('ready again once the loop is free')
  t.equal((await fetch(url + '/images')).status, 200)
})

t.test('maxEventLoopDelayMs: 0 turns load shedding off', async (t) => {
  const { url } = await startServer(t, { maxEventLoopDelayMs: 0 })
  await new Promise<void>((resolve) => setImmediate(() => { blockEventLoop(300); resolve() }))
  t.equal((await fetch(url + '/ready')).status, 200, 'ready even after a stall')
  t.equal((await fetch(url + '/images')).status, 200)
})
