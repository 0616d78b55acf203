// An attached Node.js process (pixelport/attach) rides through a crash of its server and a `--recover`
// start: its handles stay valid, it attaches again by itself with its leases taken again, a waitForChange
// that began before the crash wakes on a write made after it, and requests made while the server is down
// fail with PXP_ERR_CLOSED. (Python's side: python/tests/test_restart.py.)
import t from 'tap'
import { attach } from '../../client/attach/index.js'
import { startAttachAgent } from '../helpers/attach-agent.js'
import { serveCli } from '../helpers/cli.js'
import { call } from '../helpers/http.js'
import { SIZE_FLAGS, stopCli } from '../helpers/restart.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const leases = async (url: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(/^pixelport_leases (\d+)/m.exec(text)?.[1] ?? NaN)
}

if (shmAddon(t) !== null) {
  t.test('kill -9 and --recover: the attached process attaches again, its handles and waits go on', async (t) => {
    const prefix = testPrefix(t)
    const first = await serveCli(t, ['--shm', '--shm-prefix', prefix, ...SIZE_FLAGS])
    await call(first.url, 'POST', '/images', { id: 'ride/img', width: 4, height: 4, mode: 'L' })
    await call(first.url, 'POST', '/images', { id: 'ride/frames', width: 4, height: 4, mode: 'L', frames: 2 })
    const agent = await startAttachAgent(t, first.url)
    await agent.call('open', 'ride/img')
    await agent.call('open', 'ride/frames')
    await agent.call('fill', 'ride/img', 1)
    const before = (await agent.call('read', 'ride/img')).generation as number
    t.equal(await leases(first.url), 2, 'two leases, both the agent\'s')

    // A wait begun before the crash, to be woken by a write after the restart.
    const waited = agent.call<number>('waitForChange', 'ride/img', before, 60_000)

    first.child.kill('SIGKILL')
    await new Promise((resolve) => first.child.once('exit', resolve))
    t.equal((await agent.fail('describe', 'ride/img')).code, 'PXP_ERR_CLOSED', 'a request while the server is down: PXP_ERR_CLOSED')
    t.equal((await agent.fail('open', 'ride/other')).code, 'PXP_ERR_CLOSED', 'opening needs the server too')
    t.equal((await agent.call('read', 'ride/img')).generation, before, 'shared memory stays readable meanwhile')
    t.equal(await agent.call('isClosed'), false, 'the store is not closed: it waits for its server')

    const second = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--recover', ...SIZE_FLAGS])
    await until(async () => await agent.call('reconnects') === 1, { what: 'the agent to attach again by itself', timeout: 15_000 })
    t.equal(await leases(second.url), 2, 'both open handles took their leases again on the new server')
    t.same((await agent.call('describe', 'ride/img')).id, 'ride/img', 'requests work again')

    await agent.call('fill', 'ride/img', 2)
    const woke = await waited
    t.ok(woke > before, `the wait begun before the crash woke after it (generation ${woke} > ${before})`)
    const served = await fetch(`${second.url}/images/ride%2Fimg/data`)
    t.same([...new Uint8Array(await served.arrayBuffer())], new Array(16).fill(2), 'the new server serves what the same handle wrote')

    const frame = await agent.call<number>('loan', 'ride/frames', 7)
    t.ok(frame >= 0, 'loans work on the adopted store')
    await agent.call('publish', 'ride/frames')
    const frames = await fetch(`${second.url}/images/ride%2Fframes/data`)
    t.same([...new Uint8Array(await frames.arrayBuffer())], new Array(16).fill(7), 'and the published frame is served')

    await agent.call('release', 'ride/img')
    t.equal(await leases(second.url), 1, 'release gives the re-taken lease back to the new server')
    await agent.call('close')
    await until(async () => await leases(second.url) === 0, { what: 'the server to take the last lease back' })
    t.equal(await stopCli(second.child), 0)
    t.same(shmFiles(prefix), [], 'no segment leaks after a clean shutdown')
  })

  t.test('reconnect: false closes at once; a store that is gone for good closes the attached store', async (t) => {
    const prefix = testPrefix(t)
    const first = await serveCli(t, ['--shm', '--shm-prefix', prefix, ...SIZE_FLAGS])
    await call(first.url, 'POST', '/images', { id: 'gone/img', width: 2, height: 2, mode: 'L' })
    const agent = await startAttachAgent(t, first.url)
    await agent.call('open', 'gone/img')
    const strict = await attach(first.url, { reconnect: false })
    t.teardown(() => strict.close())
    const image = await strict.open('gone/img')
    first.child.kill('SIGKILL')
    await until(() => strict.isClosed, { what: 'the reconnect: false store to close' })
    t.ok(image.isReleased, 'its handle was released')
    t.equal(await agent.call('isClosed'), false, 'the default store waits for its server')
    // A start without --recover removes the dead store's segments: nothing will ever adopt them.
    const second = await serveCli(t, ['--shm', '--shm-prefix', prefix, ...SIZE_FLAGS])
    await until(async () => await agent.call('isClosed') === true, { what: 'the attached store to close', timeout: 10_000 })
    t.equal((await agent.fail('read', 'gone/img')).code, 'PXP_ERR_NOT_LEASED', 'its handles were released')
    t.equal(await stopCli(second.child), 0)
  })
}
