/**
 * A policy 'all' subscription whose application does not consume its events: the remote client's own buffer
 * is bounded by `queue`, and past it the subscription fails with PXP_ERR_CONSUMER_OVERFLOW and unsubscribes.
 * (The server's queue overflowing is PXP_ERR_SUBSCRIPTION_OVERFLOW, test/ws/subscriptions.test.ts: here the
 * client keeps reading the socket, so the server's queue never fills.)
 */
import t from 'tap'
import { RemoteClient } from '../../client/remote/index.js'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/until.js'

async function subscriptions (url: string): Promise<number> {
  const text = await (await fetch(url + '/metrics')).text()
  return Number(/^pixelport_subscriptions (\S+)$/m.exec(text)?.[1])
}

t.test('the events the application leaves unread are bounded by queue', async (t) => {
  const { url, server } = await startServer(t)
  const c = await RemoteClient.connect(url)
  t.teardown(() => c.close())
  const events = await c.subscribe({ policy: 'all', queue: 2 })
  t.equal(await subscriptions(url), 1)
  // Nothing consumes the events; the client gives up on the third and unsubscribes. One image at a time, each
  // followed by a round trip, so the server has sent each event before the next (its own queue stays short).
  for (let i = 0; i < 3; i++) {
    server.store.create({ id: `img${i}`, width: 2, height: 2, mode: 'L' })
    await c.describe(`img${i}`)
  }
  await until(async () => await subscriptions(url) === 0, { what: 'the client to unsubscribe' })
  await t.rejects(events.next(), { code: 'PXP_ERR_CONSUMER_OVERFLOW', message: /left 2 events unread/ })
  t.equal((await events.next()).done, true, 'then the iterator is finished')
})
