/**
 * pixelport/attach against a real server with --shm: a worker thread in the server's process and separate
 * Node.js processes map the same pixels, see each other's commits, never see a torn frame, and a process
 * killed with -9 gives back what it held.
 */
import t from 'tap'
import net from 'node:net'
import { statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { attach } from '../../client/attach/index.js'
import { HEADER, LOCK_TOKEN, SLOT, slotBase } from '../../protocol/layout.js'
import { shmPath } from '../../shm/names.js'
import { startAgent } from '../helpers/agent.js'
import { agentPool, bytesOf, startAttachAgent } from '../helpers/attach-agent.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

async function download (url: string, id: string): Promise<{ generation: number, bytes: Uint8Array }> {
  const res = await fetch(`${url}/images/${encodeURIComponent(id)}/data`)
  return { generation: Number(res.headers.get('x-pixelport-generation')), bytes: new Uint8Array(await res.arrayBuffer()) }
}

function uniform (bytes: Uint8Array, value: number): boolean {
  return bytes.every((b) => b === value)
}

if (shmAddon(t) !== null) {
  // Agent processes are slow to start: the subtests that do not kill theirs share two, one subtest at a time.
  const agents = agentPool(t)

  t.test('a worker writes; another process reads the same pixels, writes back, and HTTP downloads that', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const d = server.store.create({ id: 'cam/1', width: 64, height: 48, mode: 'RGBA' })
    t.equal(d.location.kind === 'block' && d.location.segment !== null && statSync(shmPath(d.location.segment as string)).isFile(), true, 'the block is a /dev/shm file')
    const [worker, [other]] = await Promise.all([startAgent(server), agents(t, url, 1)])
    t.teardown(() => worker.call('exit'))
    await worker.call('open', 'cam/1')
    t.equal(await worker.call('fill', 'cam/1', 42), 1, 'the worker commits generation 1')

    const opened = await other.call('open', 'cam/1')
    t.equal(opened.generation, 1)
    t.equal(opened.location.segment, d.location.kind === 'block' ? d.location.segment : null, 'the attached process maps the same segment')
    const seen = await other.call('read', 'cam/1')
    t.equal(seen.generation, 1)
    t.ok(uniform(bytesOf(seen.bytes), 42), 'the other process reads what the worker wrote')

    // The worker waits; a commit made in the other process reaches it through the server's relay thread.
    const woken = worker.call('waitForChange', 'cam/1', 1, 10_000)
    t.equal(await other.call('fill', 'cam/1', 17), 2, 'the other process commits generation 2')
    t.equal(await woken, 2, 'the worker\'s waitForChange woke for a commit made in another process')
    await until(() => server.store.describe('cam/1').generation === 2, { what: 'the server announced generation 2' })
    const http = await download(url, 'cam/1')
    t.equal(http.generation, 2)
    t.ok(uniform(http.bytes, 17), 'HTTP downloads the pixels the other process wrote')
    t.ok(uniform(bytesOf((await worker.call('read', 'cam/1')).bytes), 17), 'and the worker reads them')

    // And the other way: the attached process waits (futex) for commits by the worker and by HTTP.
    const waiting = other.call('waitForChange', 'cam/1', 2, 10_000)
    t.equal(await worker.call('fill', 'cam/1', 5), 3)
    t.equal(await waiting, 3, 'woken by the worker\'s commit')
    const waitingSync = other.call('waitSync', 'cam/1', 3, 10_000)
    await fetch(`${url}/images/cam%2F1/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(d.byteLength).fill(6) })
    t.equal(await waitingSync, 4, 'a blocking wait in the other process is woken by an HTTP PUT')
    t.equal((await other.fail('waitForChange', 'cam/1', 4, 30)).code, 'PXP_ERR_TIMEOUT')
    t.equal((await other.fail('waitAborted', 'cam/1', 4)).code, 'PXP_ERR_ABORTED')
  })

  t.test('a descriptor alone is enough to attach, and descriptors say where everything is', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'base', width: 20, height: 10, mode: 'L' })
    await server.store.write('base', Uint8Array.from({ length: 200 }, (_, i) => i))
    const view = server.store.createView('base', { x: 5, y: 2, width: 4, height: 3, id: 'base/v' })
    const d: any = await (await fetch(`${url}/images/base%2Fv`)).json()
    const words = server.store.table.words
    t.match(d.location, {
      kind: 'block',
      segment: (view.location as { segment: string }).segment,
      table: server.store.table.segment,
      slot: server.store.slotOf('base/v'),
      controlSlot: server.store.slotOf('base'),
      controlOffset: slotBase(server.store.slotOf('base')) * 4,
      socket: server.attach!.address,
    })
    t.equal(words[d.location.controlOffset / 4 + SLOT.GENERATION], 1, 'controlOffset addresses the root\'s control words')
    const [agent] = await agents(t, url, 1)
    const through = await agent.call('attachDescriptor', d)
    t.same(through, { id: 'base/v', generation: 1, first: 2 * 20 + 5 }, 'attach(descriptor) maps the view at its offset')
    const info: any = await (await fetch(`${url}/shm`)).json()
    t.match(info, { enabled: true, table: server.store.table.segment, socket: server.attach!.address, mode: 0o600, layoutVersion: 3 })
    t.equal(statSync(info.socket).mode & 0o777, 0o600, 'the attach socket has the store\'s file mode')
  })

  t.test('a writer in one process, readers in others: never a torn frame', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'torn', width: 256, height: 256, mode: 'L' })
    const [[writer, reader], worker] = await Promise.all([agents(t, url, 2), startAgent(server)])
    t.teardown(() => worker.call('exit'))
    await Promise.all([writer.call('open', 'torn'), reader.call('open', 'torn'), worker.call('open', 'torn')])
    let serverTorn = 0
    let serverReads = 0
    let writing = true
    const serverReader = (async () => {
      while (writing) {
        const copy = await server.store.read('torn')
        if (!uniform(copy.bytes, copy.bytes[0])) serverTorn++
        serverReads++
        await sleep(0)
      }
    })()
    // The three start at once, but a loaded machine may run the writer's 400 frames before the other
    // process reads at all; then its reads prove nothing. Run again (at most 5 times) until they overlapped.
    let overlapped = false
    for (let round = 1; round <= 5 && !overlapped; round++) {
      const [last, readOther, readWorker] = await Promise.all([
        writer.call('writeFrames', 'torn', 400),
        reader.call('readFrames', 'torn', 400),
        worker.call('readFrames', 'torn', 400),
      ])
      t.equal(last, 400 * round, `round ${round}: every commit of the other process counted`)
      t.equal(readOther.torn, 0, `round ${round}: no torn frame in a second process`)
      t.equal(readWorker.torn, 0, `round ${round}: no torn frame in a worker thread`)
      overlapped = readOther.last > readOther.first
    }
    writing = false
    await serverReader
    t.ok(overlapped, 'the other process read while the writer wrote (it saw generations move)')
    t.equal(serverTorn, 0, `no torn frame in ${serverReads} server reads`)

    // And with the roles turned: the worker writes, the other process reads.
    const [, readAgain] = await Promise.all([worker.call('writeFrames', 'torn', 300), reader.call('readFrames', 'torn', 300)])
    t.equal(readAgain.torn, 0)
  })

  t.test('kill -9 while holding leases and a pin: the server takes them back', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'held', width: 8, height: 8, mode: 'L' })
    server.store.create({ id: 'frames', width: 8, height: 8, mode: 'L', frames: 3 })
    const agent = await startAttachAgent(t, url)
    await agent.call('open', 'held')
    await agent.call('open', 'frames')
    t.same(await agent.call('pinHold', 'frames'), { generation: 0, copied: false }, 'a frame buffer pinned zero-copy')
    const frameSlot = server.store.slotOf('frames')
    const loaned = await agent.call('loan', 'frames', 9)
    t.equal(server.store.table.word(frameSlot, SLOT.PINS + loaned), -1, 'a frame buffer on loan')
    const slot = server.store.slotOf('held')
    t.equal(server.store.table.leases(slot), 1)
    server.store.delete('held')
    t.equal(server.store.stats().retired, 1, 'deleted, but its memory is kept for the lease')
    agent.child.kill('SIGKILL')
    t.same(await agent.exited, [null, 'SIGKILL'])
    await until(() => server.attach!.connectionCount === 0, { what: 'the attach connection is gone' })
    t.equal(server.store.stats().retired, 0, 'the lease came back and the memory was reused')
    t.same([0, 1, 2].map((f) => server.store.table.word(frameSlot, SLOT.PINS + f)), [0, 0, 0], 'pin and loan given back')
    t.equal(server.store.table.leases(frameSlot), 0)
    for (let i = 1; i <= 4; i++) await server.store.write('frames', new Uint8Array(64).fill(i))
    t.equal(server.store.generation('frames'), 4, 'every frame buffer is usable again')
  })

  t.test('kill -9 in the middle of a write: the lock comes back and a waiting writer goes on', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) }, lockTimeoutMs: 20_000 })
    server.store.create({ id: 'w', width: 16, height: 16, mode: 'L' })
    const agent = await startAttachAgent(t, url)
    await agent.call('open', 'w')
    void agent.call('hangInWrite', 'w').catch(() => {})
    t.same(await agent.nextEvent(), { event: 'locked' })
    const slot = server.store.slotOf('w')
    const words = server.store.table.words
    t.ok(words[slotBase(slot) + SLOT.WRITE_LOCK] >= LOCK_TOKEN.EXTERNAL, 'the other process holds the write lock')
    t.equal(words[slotBase(slot) + SLOT.SEQ] & 1, 1, 'mid-write (SEQ odd)')
    const started = performance.now()
    const serverWrite = server.store.write('w', new Uint8Array(256).fill(7))
    agent.child.kill('SIGKILL')
    await agent.exited
    const after = await serverWrite
    t.ok(performance.now() - started < 10_000, 'the server\'s write went on once the lock came back')
    t.equal(after.generation, 2, 'the torn write was committed as generation 1, the server\'s is 2')
    t.equal(words[slotBase(slot) + SLOT.SEQ] & 1, 0, 'the seqlock is closed')
    t.equal(words[slotBase(slot) + SLOT.WRITE_LOCK], 0, 'the lock is free')
    t.ok(uniform((await server.store.read('w')).bytes, 7))
  })

  t.test('bad attach attempts are refused and change nothing', async (t) => {
    const plain = await startServer(t)
    plain.server.store.create({ id: 'p', width: 2, height: 2, mode: 'L' })
    await t.rejects(attach(plain.url), { code: 'PXP_ERR_SHM' }, 'a server without --shm')
    await t.rejects(attach(plain.server.store.describe('p')), { code: 'PXP_ERR_SHM' }, 'a descriptor of in-process memory')
    t.match(await (await fetch(`${plain.url}/shm`)).json(), { enabled: false, reason: /not enabled/, table: null, socket: null })

    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    const socket = server.attach!.address
    const talk = async (lines: string[]): Promise<string[]> => {
      const conn = net.connect(socket)
      let got = ''
      conn.setEncoding('utf8').on('data', (d: string) => { got += d })
      await new Promise((resolve) => conn.once('connect', resolve))
      for (const line of lines) conn.write(line + '\n')
      await new Promise((resolve) => conn.once('close', resolve))
      return got.trim().split('\n').map((l) => JSON.parse(l).error?.code ?? 'OK')
    }
    const hello = { op: 'hello', req: 1, protocol: 1, layoutVersion: 3, pid: 1, claims: false }
    const key = [server.store.table.words[HEADER.ATTACH_KEY], server.store.table.words[HEADER.ATTACH_KEY + 1]]
    t.same(await talk(['{"op":"list","req":1}']), ['PXP_ERR_PROTOCOL'], 'a request before hello ends the connection')
    t.same(await talk(['not json']), ['PXP_ERR_PROTOCOL'], 'garbage ends the connection')
    const wrongKey = net.connect(socket)
    await new Promise((resolve) => wrongKey.once('connect', resolve))
    wrongKey.write(JSON.stringify({ ...hello, key: [key[0] ^ 1, key[1]] }) + '\n')
    const reply = await new Promise<string>((resolve) => wrongKey.setEncoding('utf8').once('data', resolve))
    t.equal(JSON.parse(reply).error.code, 'PXP_ERR_FORBIDDEN', 'a wrong attach key is refused')
    wrongKey.end(JSON.stringify({ ...hello, req: 2, layoutVersion: 1, key }) + '\n')
    const [agent] = await agents(t, url, 1)
    t.equal((await agent.fail('open', 'missing')).code, 'PXP_ERR_NOT_FOUND')
    t.equal(server.attach!.connectionCount >= 1, true)
    t.equal(server.store.table.words[HEADER.HIGH_WATER], 0, 'nothing was created')
  })
}
