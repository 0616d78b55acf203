/**
 * The server with shared memory on: the table and blocks in /dev/shm with the right modes, options checked
 * up front, a clean shutdown that leaves nothing behind, a fallback that says why, the clean-up of a crashed
 * store's segments at the next start, and the real CLI.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, statSync } from 'node:fs'
import { createServer } from '../../server/server.js'
import { tableBytes } from '../../protocol/layout.js'
import { HeapBlockProvider } from '../../server/memory/block-provider.js'
import { shmPath } from '../../shm/names.js'
import { serveCli } from '../helpers/cli.js'
import { startAttachAgent, bytesOf } from '../helpers/attach-agent.js'
import { startServer } from '../helpers/server.js'
import { plainEnv, runChild, shmAddon, shmFiles, testPrefix, childArgs } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const CHILD = 'test/fixtures/shm-server-child'

if (shmAddon(t) !== null) {
  t.jobs = 2

  t.test('the table and the blocks are /dev/shm files with the store mode; close removes every one', async (t) => {
    const prefix = testPrefix(t)
    const server = await createServer({ port: 0, shm: { prefix }, capacity: 16 << 20, blockSize: 1 << 20, maxImages: 100 })
    t.teardown(() => server.close())
    t.equal(server.shm.enabled, true)
    t.equal(server.store.stats().provider, 'shm')
    const table = server.store.table.segment as string
    t.match(table, new RegExp(`^/${prefix}-[0-9a-f]{32}-table$`))
    t.equal(statSync(shmPath(table)).size, tableBytes(100), 'a fixed-size table for maxImages')
    const d = server.store.create({ id: 'a', width: 4, height: 4, mode: 'L' })
    server.store.create({ id: 'rows', width: 4, height: 4, mode: 'L', layout: 'lines' })
    const block = (d.location as { segment: string }).segment
    for (const name of [table, block]) t.equal(statSync(shmPath(name)).mode & 0o777, 0o600, `${name} is 0600`)
    const rows = server.store.describe('rows').location as { segments: Array<{ segment: string }> }
    t.ok(rows.segments.every((s) => s.segment === block), 'line-based descriptors name the segment of every run')
    await server.listen()
    t.equal(statSync(server.attach!.address).mode & 0o777, 0o600, 'the attach socket too')
    t.ok(shmFiles(prefix).length >= 4, 'table, block, owner marker and socket exist')
    await server.close()
    t.same(shmFiles(prefix), [], 'a clean shutdown leaves nothing in /dev/shm')
    await server.close()
  })

  t.test('shm.mode 0o640 shares with the group deliberately; options are checked up front', async (t) => {
    const prefix = testPrefix(t)
    const { server } = await startServer(t, { shm: { prefix, mode: 0o640 } })
    server.store.create({ id: 'g', width: 2, height: 2, mode: 'L' })
    t.equal(statSync(shmPath(server.store.table.segment as string)).mode & 0o777, 0o640)
    t.equal(statSync(server.attach!.address).mode & 0o777, 0o640)
    await t.rejects(createServer({ shm: { mode: 0o644 } }), { code: 'PXP_ERR_VALIDATION', message: /option shm\.mode/ })
    await t.rejects(createServer({ shm: { prefix: 'no-hyphens' } }), { code: 'PXP_ERR_VALIDATION', message: /shm prefix/ })
    await t.rejects(createServer({ shm: 'yes' as unknown as boolean }), { code: 'PXP_ERR_VALIDATION', message: /option shm/ })
    await t.rejects(createServer({ shm: true, provider: new HeapBlockProvider() }), { code: 'PXP_ERR_VALIDATION', message: /cannot be combined/ })
    t.equal(shmFiles(prefix).length, 4, 'refused options created nothing more')
  })

  t.test('a fresh start after a crash removes the dead store\'s segments, socket and all', async (t) => {
    const prefix = testPrefix(t)
    const child = spawn(process.execPath, [...childArgs(CHILD), prefix], { stdio: ['pipe', 'pipe', 'inherit'], env: plainEnv() })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    const [line] = await once(child.stdout.setEncoding('utf8'), 'data') as [string]
    const crashed = JSON.parse(line)
    t.ok(crashed.shm.enabled)
    t.same(crashed.files.map((f: string) => f.split('-')[2]).sort(), ['0', 'attach', 'owner', 'table'])
    // Attached to the dead-to-be server, a reader holds mappings: they must outlive the crash.
    const agent = await startAttachAgent(t, crashed.url)
    await agent.call('open', 'left-behind')
    child.kill('SIGKILL')
    await once(child, 'exit')
    const left = shmFiles(prefix)
    t.same(left, [...crashed.files, `${prefix}-${crashed.shm.storeId}-a0`].sort(), 'kill -9 leaves the segments behind (with the attached process\'s claims)')
    // The attached process lost its server, but the segments are there for a --recover start to adopt: it
    // waits for one (requests fail with PXP_ERR_CLOSED meanwhile; test/restart/ride-through.test.ts).
    await until(async () => (await agent.fail('describe', 'left-behind')).code === 'PXP_ERR_CLOSED', { what: 'the attached process to notice the server is gone' })
    t.equal(await agent.call('isClosed'), false, 'it waits for a server that adopts the store')

    const { server } = await startServer(t, { shm: { prefix } })
    t.notOk(left.some((f: string) => existsSync(`/dev/shm/${f}`)), 'the dead store\'s files are gone')
    // A fresh start removed them: nothing will adopt the store, so the attached store closes. Its handles refuse
    // further use, and nothing crashes (no SIGBUS: segments are never truncated, its mappings outlive the names).
    await until(async () => await agent.call<boolean>('isClosed'), { what: 'the attached process to notice its store is gone' })
    t.equal((await agent.fail('read', 'left-behind')).code, 'PXP_ERR_NOT_LEASED')
    t.equal((await agent.fail('list')).code, 'PXP_ERR_CLOSED')
    t.equal(await agent.call('pid'), agent.pid, 'the attached process lives on')
    t.same(shmFiles(prefix).filter((f) => f.includes(crashed.shm.storeId)), [])
    t.ok(server.shm.enabled)
  })

  t.test('the real CLI: --shm, an attached process, SIGTERM removes everything', async (t) => {
    const prefix = testPrefix(t)
    const { child, url, output } = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--capacity', '64M', '--block-size', '8M'])
    t.match(output(), /shared memory: table \/\S+-table \(mode 600\)/)
    const info = await (await fetch(`${url}/shm`)).json() as { enabled: boolean, prefix: string }
    t.match(info, { enabled: true, prefix })
    await fetch(`${url}/images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'cli', width: 8, height: 8, mode: 'L' }) })
    await fetch(`${url}/images/cli/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(64).fill(3) })
    const agent = await startAttachAgent(t, url)
    await agent.call('open', 'cli')
    t.same(bytesOf((await agent.call('read', 'cli')).bytes), new Uint8Array(64).fill(3))
    t.equal(await agent.call('fill', 'cli', 4), 2)
    const res = await fetch(`${url}/images/cli/data`)
    t.same(new Uint8Array(await res.arrayBuffer()), new Uint8Array(64).fill(4), 'HTTP sees the attached write')
    t.ok(shmFiles(prefix).length > 0)
    child.kill('SIGTERM')
    t.same(await once(child, 'exit'), [0, null], 'SIGTERM shuts down cleanly')
    t.same(shmFiles(prefix), [], 'and leaves nothing in /dev/shm')
  })

  t.test('the CLI refuses a bad --shm-mode; without the addon it runs on in-process memory and says why', async (t) => {
    const { CLI } = await import('../helpers/cli.js')
    const bad = await runChild(process.execPath, [CLI, 'serve', '--shm', '--shm-mode', '644', '--port', '0'])
    t.equal(bad.code, 2)
    t.match(bad.stderr, /shm\.mode must be one of 0o600, 0o640, 0o660/)
    const prefix = testPrefix(t)
    const child = spawn(process.execPath, [CLI, 'serve', '--shm', '--shm-prefix', prefix, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PIXELPORT_SHM_ADDON: '/nonexistent/pixelport_shm.node' },
    })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    const [line] = await once(child.stdout.setEncoding('utf8'), 'data') as [string]
    const url = /listening on (\S+)/.exec(line)?.[1] as string
    t.match(await (await fetch(`${url}/shm`)).json(), { enabled: false, table: null, socket: null, reason: /shared memory unavailable.*does not load/ })
    t.same(shmFiles(prefix), [], 'no segment was made')
    child.kill('SIGTERM')
    await once(child, 'exit')
    t.match(err, /warning: shared memory unavailable, using in-process blocks/)
  })
}
