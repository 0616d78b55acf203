/**
 * RemoteClient with `reconnect`: a real CLI server (`--shm --keep`) stopped and started again on the same
 * port with `--recover`, so its images survive. While it is down, calls fail with PXP_ERR_CLOSED; once it
 * is back, the client reconnects by itself, its subscriptions carry on, and each delivers the current
 * generation of the images it watched, with `skipped` counting the generations it did not see.
 */
import t from 'tap'
import { RemoteClient, type RemoteEvent, type RemoteSubscription } from '../../client/remote/index.js'
import { serveCli } from '../helpers/cli.js'
import { HttpClient } from '../../client/remote/http.js'
import { stopCli } from '../helpers/restart.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const SIZE_FLAGS = ['--capacity', String(16 << 20), '--block-size', String(1 << 20)]

/** Events of `sub` as they come, and the invariant every `latest` subscriber may rely on, checked on each. */
function follow (sub: RemoteSubscription): { events: RemoteEvent[], broken: string[] } {
  const events: RemoteEvent[] = []
  const broken: string[] = []
  const last = new Map<string, number>()
  void (async () => {
    try {
      for await (const ev of sub) {
        events.push(ev)
        const previous = last.get(ev.id)
        if (ev.type === 'updated' && previous !== undefined && previous + 1 + ev.skipped !== ev.generation) {
          broken.push(`${ev.id}: ${previous} + 1 + skipped ${ev.skipped} != ${ev.generation}`)
        }
        if (ev.type === 'deleted') last.delete(ev.id)
        else last.set(ev.id, ev.generation)
      }
    } catch (err) {
      broken.push(`ended: ${(err as Error).message}`)
    }
  })()
  return { events, broken }
}

const loaded = shmAddon(t)

if (loaded !== null) {
  t.test('a subscription continues across a server restart', async (t) => {
    const prefix = testPrefix(t)
    const first = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--keep', ...SIZE_FLAGS])
    const port = new URL(first.url).port
    const client = await RemoteClient.connect(first.url, { reconnect: { initialDelay: 300, maxDelay: 600 } })
    t.teardown(() => client.destroy())
    await client.put({ id: 'cam', width: 4, height: 4, mode: 'L' }, new Uint8Array(16).fill(1))
    await client.put({ id: 'gone', width: 2, height: 2, mode: 'L' }, new Uint8Array(4))
    const withData = follow(await client.subscribe({ ids: ['cam', 'gone'], data: true }))
    const everything = follow(await client.subscribe())
    await client.put('cam', new Uint8Array(16).fill(2))
    await client.put('gone', new Uint8Array(4).fill(1))
    await until(() => withData.events.filter((e) => e.type === 'updated').length === 2 && everything.events.length === 2, { what: 'the events before the restart' })

    t.equal(await stopCli(first.child), 0, 'the server stopped gracefully, keeping its segments')
    await until(() => !client.connected, { what: 'the client to notice' })
    await t.rejects(client.describe('cam'), { code: 'PXP_ERR_CLOSED' }, 'calls fail while the server is down')
    await t.rejects(client.get('cam'), { code: 'PXP_ERR_CLOSED' })
    t.equal(withData.broken.length, 0, 'the subscriptions are still open')

    const second = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--recover', '--port', port, ...SIZE_FLAGS])
    t.equal(second.url, first.url, 'the same address')
    // Writes the client may miss while it is still reconnecting: its catch-up shows them as skipped.
    const http = new HttpClient(second.url)
    t.teardown(() => http.close())
    let generation = 0
    for (let v = 3; v <= 5; v++) generation = (await http.put('cam', new Uint8Array(16).fill(v))).generation
    await http.delete('gone')
    await until(() => client.connected, { what: 'the client to reconnect', timeout: 20_000 })
    await until(() => withData.events.some((e) => e.id === 'cam' && e.generation === generation), { what: 'the current generation of cam' })
    const latest = withData.events.filter((e) => e.id === 'cam').at(-1)!
    t.equal(latest.generation, generation)
    t.same([...latest.bytes!], new Array(16).fill(5), 'with the pixels of that generation')
    await until(() => withData.events.some((e) => e.id === 'gone' && e.type === 'deleted'), { what: 'the delete of gone' })
    await until(() => everything.events.some((e) => e.id === 'cam' && e.generation === generation), { what: 'the subscription to every image' })

    // The subscriptions are live on the new connection, and the client works again.
    const next = (await http.put('cam', new Uint8Array(16).fill(6))).generation
    await until(() => withData.events.some((e) => e.id === 'cam' && e.generation === next), { what: 'an event after the restart' })
    t.equal((await client.get('cam')).generation, next)
    t.comment(`cam events: ${withData.events.filter((e) => e.id === 'cam').map((e) => `${e.type} ${e.generation} (skipped ${e.skipped})`).join(', ')}`)
    t.same(withData.broken, [], 'generation(previous) + 1 + skipped = generation, throughout')
    t.same(everything.broken, [])
    await client.close()
    await stopCli(second.child)
  })

  t.test('without reconnect, a lost connection ends the client and its subscriptions', async (t) => {
    const prefix = testPrefix(t)
    const server = await serveCli(t, ['--shm', '--shm-prefix', prefix, ...SIZE_FLAGS])
    const client = await RemoteClient.connect(server.url)
    const sub = await client.subscribe()
    await stopCli(server.child)
    await t.rejects(sub.next(), { code: 'PXP_ERR_CLOSED' })
    await t.rejects(client.list(), { code: 'PXP_ERR_CLOSED' })
    await client.close()
  })
}
