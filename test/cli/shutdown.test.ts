/**
 * Graceful shutdown of `pixelport serve`: on SIGTERM or SIGINT it stops accepting, closes WebSockets with
 * 1001 (going away), stops its workers and exits 0 within a bounded time.
 */
import t from 'tap'
import { once } from 'node:events'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { serveCli } from '../helpers/cli.js'
import { WireClient } from '../helpers/wire-client.js'

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: WebSockets closed with 1001, workers stopped, exit 0`, async (t) => {
    const { url, child, output } = await serveCli(t, ['--demo'])
    const c = await WireClient.connect(t, url)
    t.equal((await c.request({ op: 'hello', protocol: PROTOCOL_VERSION })).op, 'welcome')
    const sub = await c.request({ op: 'subscribe', ids: ['demo/pattern'], data: true })
    t.equal(sub.op, 'subscribed')
    // The demo worker is writing frames: wait for one, so a stream is live when the signal lands.
    await c.next((m) => m.op === 'event')
    const started = Date.now()
    const exited = once(child, 'exit')
    child.kill(signal)
    const closed = await c.closed
    t.equal(closed.code, 1001, 'going away')
    const [code] = await exited
    t.equal(code, 0, 'exit code 0')
    t.ok(Date.now() - started < 10_000, 'within the bound')
    t.match(output(), new RegExp(`${signal}: shutting down`))
    await t.rejects(fetch(url + '/healthz'), 'no longer accepting')
  })
}
