// kill -9 of a --shm server in the middle of everything, then `pixelport serve --recover`: every image comes
// back with its bytes and a generation at least the last acknowledged one, no read is torn, and a clean
// shutdown afterwards leaves nothing in /dev/shm.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { startAttachAgent } from '../helpers/attach-agent.js'
import { serveCli } from '../helpers/cli.js'
import { call } from '../helpers/http.js'
import { repoPath } from '../helpers/paths.js'
import { httpFingerprints, SIZE_FLAGS, startPopulated, stopCli } from '../helpers/restart.js'
import { plainEnv, runChild, shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'
import { stallUpload } from '../helpers/stalled-upload.js'
import { until } from '../helpers/until.js'

const PYTHON = '/usr/bin/python3'
const loaded = shmAddon(t)
const numpy = loaded === null ? null : await runChild(PYTHON, ['-c', 'import numpy'])
if (numpy !== null && numpy.code !== 0) t.pass('restart after kill -9', { skip: `${PYTHON} has no numpy (apt-get install -y python3-numpy)` })

/** Publishes frame k (every byte k % 256) of `id` in a loop, printing each acknowledged generation. */
const PUBLISHER = `
import sys, json
sys.path.insert(0, sys.argv[1])
import pixelport
store = pixelport.connect(sys.argv[2])
img = store.open(sys.argv[3])
k = 0
while True:
    k += 1
    loan = img.loan()
    loan.array[...] = k % 256
    g = loan.publish()
    print(json.dumps({'k': k, 'generation': g}), flush=True)
`

const LOCKED = 'block/RGB'    // an attached Node process dies... no: hangs holding its write lock
const PUBLISHED = 'frames/L'  // a Python process publishing frames
const UPLOADED = 'block/LA'   // an HTTP PUT in the middle of its body
const DELETED = 'raw/_i4/6'   // (1-D: no views) deleted while the Node process still holds it open

if (loaded !== null && numpy?.code === 0) {
  t.test('SIGKILL while a PUT is mid-body, a Node process holds the write lock and Python publishes: --recover restores everything', async (t) => {
    const prefix = testPrefix(t)
    const first = await startPopulated(t, prefix, false, [LOCKED])
    const before = new Map(first.fingerprints.map((f) => [f.id, f]))

    // Python publishing frames, through the attach socket.
    const py = spawn(PYTHON, ['-c', PUBLISHER, repoPath('python/src'), first.url, PUBLISHED], { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() })
    t.teardown(() => { py.kill('SIGKILL') })
    let lastAck = -1
    createInterface({ input: py.stdout! }).on('line', (line) => { lastAck = JSON.parse(line).generation })
    const pyExited = new Promise((resolve) => py.once('exit', resolve))
    await until(() => lastAck >= before.get(PUBLISHED)!.generation + 5, { what: 'python published five frames', timeout: 20_000 })

    // An HTTP PUT that has sent half its body.
    const size = before.get(UPLOADED)!
    const byteLength = size.shape.reduce((a, b) => a * b, 1)
    await stallUpload(t, first.url, { method: 'PUT', path: `/images/${encodeURIComponent(UPLOADED)}/data`, contentType: 'application/octet-stream', length: byteLength, send: new Uint8Array(byteLength >> 1).fill(0xee) })
    await until(async () => /pixelport_uploads_in_progress [1-9]/.test(await (await fetch(`${first.url}/metrics`)).text()), { what: 'the PUT is receiving its body', timeout: 10_000 })

    // An attached Node process inside write(), holding the lock with the seqlock odd.
    const agent = await startAttachAgent(t, first.url)
    await agent.call('open', LOCKED)
    await agent.call('open', DELETED)
    t.equal((await fetch(`${first.url}/images/${encodeURIComponent(DELETED)}`, { method: 'DELETE' })).status, 204, 'deleted, its memory held by the lease')
    before.delete(DELETED)
    void agent.call('hangInWrite', LOCKED).catch(() => {})
    t.same(await agent.nextEvent(), { event: 'locked' })

    first.child.kill('SIGKILL')
    t.same(await first.exited, [null, 'SIGKILL'])
    await pyExited
    const acknowledged = lastAck
    t.ok(shmFiles(prefix).some((f) => f.endsWith('-table')), 'the dead server left its segments')

    const second = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--recover', ...SIZE_FLAGS])
    t.match(second.output(), new RegExp(`recover: adopted store ${first.storeId}: 99 images \\(\\d+ views\\), [12] write locks of dead writers recovered \\([12] writes in progress closed`),
      'the log says what was adopted: the Node writer\'s lock and the Python publish in flight or not')
    const shm = await call(second.url, 'GET', '/shm')
    t.equal(shm.body.storeId, first.storeId, 'the same store, so every segment name in old descriptors still holds')
    const after = await httpFingerprints(second.url)
    t.same(after.prints.map((f) => f.id), [...before.keys()], 'every image is there, and the deleted one is not')
    t.match(second.output(), /[1-9]\d* deleted or replica records dropped/, 'the deleted image held by a dead lease is freed')
    for (const f of after.prints) {
      const was = before.get(f.id)!
      const { generation, sha256, ...shape } = f
      const { generation: g0, sha256: s0, ...shape0 } = was
      t.same(shape, shape0, `${f.id}: id, mode, shape, layout, view, frames and read-only flag`)
      if (f.id === LOCKED || f.view?.parent === LOCKED) {
        // Closed as a new generation holding what the dead writer had written: 99 in its first four bytes.
        t.equal(generation, g0 + 1, `${f.id}: the interrupted write became one new generation`)
        if (f.id === LOCKED) {
          const bytes = after.bytes.get(f.id)!
          const expected = first.special[LOCKED].slice()
          expected.fill(99, 0, 4)
          t.same(Buffer.from(bytes), Buffer.from(expected), 'and those bytes')
        }
      } else if (f.id === PUBLISHED || f.view?.parent === PUBLISHED) {
        t.ok(generation >= acknowledged, `${f.id}: generation ${generation} >= last acknowledged ${acknowledged}`)
        const bytes = after.bytes.get(f.id)!
        t.ok(bytes.every((b) => b === bytes[0]), `${f.id}: one whole published frame, never a torn one`)
      } else {
        t.equal(generation, g0, `${f.id}: generation`)
        t.equal(sha256, s0, `${f.id}: bytes`)
      }
    }
    // The adopted store takes writes where the dead writers left off.
    for (const id of [LOCKED, PUBLISHED]) {
      const length = after.bytes.get(id)!.length
      const put = await fetch(`${second.url}/images/${encodeURIComponent(id)}/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(length).fill(5) })
      t.equal(put.status, 200, `${id}: the recovered lock and loans are free: ${await put.text()}`)
    }
    t.equal(await stopCli(second.child), 0)
    t.same(shmFiles(prefix), [], 'no segment leaks after a clean shutdown')
    // The agent stays blocked inside its write (its main thread waits forever); the teardown kills it.
  })
}
