/**
 * The Python package (python/src/pixelport, imported from the source tree) in real Python processes (Debian's
 * python3-numpy) against a real server with shared memory: Python next to worker threads, HTTP and kill -9.
 * The package's own pytest suite runs from test/python/pytest.test.ts.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { SLOT, slotBase } from '../../protocol/layout.js'
import { startAgent } from '../helpers/agent.js'
import { repoPath } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'
import { plainEnv, runChild, shmAddon, testPrefix } from '../helpers/shm.js'

const PYTHON = '/usr/bin/python3'
const MODULE_DIR = repoPath('python/src')

/** Run a Python snippet with the module importable; `argv` follows the script. */
async function python (script: string, ...argv: string[]): Promise<{ code: number | null, out: any, stderr: string }> {
  const r = await runChild(PYTHON, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(MODULE_DIR)})\n${script}`, ...argv], { env: plainEnv() })
  const last = r.stdout.trim().split('\n').pop() ?? ''
  let out: any = null
  try { out = JSON.parse(last) } catch {}
  return { code: r.code, out, stderr: r.stderr + r.stdout }
}

const loaded = shmAddon(t)
const numpy = loaded === null ? null : await runChild(PYTHON, ['-c', 'import numpy'])
if (numpy !== null && numpy.code !== 0) t.pass('python interop', { skip: `${PYTHON} has no numpy (apt-get install -y python3-numpy)` })

if (numpy?.code === 0) {
  t.jobs = 2

  t.test('a worker writes, Python reads the same memory and writes back; HTTP and the worker see it', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'py/rgb', width: 32, height: 16, mode: 'RGB' })
    const worker = await startAgent(server)
    t.teardown(() => worker.call('exit'))
    await worker.call('open', 'py/rgb')
    await worker.call('setPixel', 'py/rgb', 3, 2, [10, 20, 30])
    const woken = worker.call('waitForChange', 'py/rgb', 1, 10_000)
    const r = await python(`
import json, numpy as np, pixelport
store = pixelport.connect(sys.argv[1])
img = store.open('py/rgb')
before, generation = img.read()
seen = img.array[2, 3].tolist()
with img.write() as a:
    a[...] = 0
    a[:, :, 1] = 200
print(json.dumps({'generation': generation, 'pixel': seen, 'sum': int(before.sum()), 'after': img.last_generation}))
`, url)
    t.equal(r.code, 0, r.stderr)
    t.same(r.out, { generation: 1, pixel: [10, 20, 30], sum: 60, after: 2 }, 'Python saw the worker\'s pixel, zero-copy and in a consistent copy')
    t.equal(await woken, 2, 'the worker\'s waitForChange woke for the Python commit')
    const res = await fetch(`${url}/images/py%2Frgb/data`)
    t.equal(res.headers.get('x-pixelport-generation'), '2')
    const bytes = new Uint8Array(await res.arrayBuffer())
    t.ok(bytes.every((b, i) => b === (i % 3 === 1 ? 200 : 0)), 'HTTP downloads what Python wrote')
    t.equal(server.store.table.leases(server.store.slotOf('py/rgb')), 1, 'Python\'s lease went with its process (the worker still holds one)')
  })

  t.test('Python reads while a worker writes: never a torn frame; it waits without polling', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) } })
    server.store.create({ id: 'py/torn', width: 512, height: 256, mode: 'L' })
    const worker = await startAgent(server)
    t.teardown(() => worker.call('exit'))
    await worker.call('open', 'py/torn')
    await worker.call('fill', 'py/torn', 1)
    const reader = python(`
import json, numpy as np, pixelport
d = pixelport.describe(sys.argv[1], 'py/torn')
import time
generation = pixelport.wait_for_change(d, 1, timeout=20)
torn, reads, seen = 0, 0, set()
deadline = time.monotonic() + 10
while (reads < 300 or len(seen) < 5) and time.monotonic() < deadline:
    a, g = pixelport.read(d)
    reads += 1
    seen.add(g)
    if a.min() != a.max():
        torn += 1
print(json.dumps({'woke': generation, 'torn': torn, 'reads': reads, 'generations': len(seen)}))
`, url)
    // The first write after Python is waiting wakes it; more keep coming while it reads.
    let done = false
    const writer = (async () => {
      while (!done) await worker.call('writeFrames', 'py/torn', 20)
    })()
    const r = await reader
    done = true
    await writer
    t.equal(r.code, 0, r.stderr)
    t.equal(r.out.torn, 0, `no torn frame in ${r.out.reads} consistent reads`)
    t.ok(r.out.woke > 1, 'wait_for_change returned a later generation')
    t.ok(r.out.generations >= 5, `the reads overlapped ${r.out.generations} generations`)
  })

  t.test('kill -9 of a Python process holding a lease and the write lock', async (t) => {
    const { server, url } = await startServer(t, { shm: { prefix: testPrefix(t) }, lockTimeoutMs: 20_000 })
    server.store.create({ id: 'py/lock', width: 8, height: 8, mode: 'L' })
    const child = spawn(PYTHON, ['-c', `import sys, time; sys.path.insert(0, ${JSON.stringify(MODULE_DIR)})
import pixelport
img = pixelport.connect(sys.argv[1]).open('py/lock')
with img.write() as a:
    a[...] = 99
    print('locked', flush=True)
    time.sleep(600)
`, url], { stdio: ['ignore', 'pipe', 'inherit'], env: plainEnv() })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string]
    t.equal(line, 'locked')
    const slot = server.store.slotOf('py/lock')
    const words = server.store.table.words
    t.equal(server.store.table.leases(slot), 1, 'Python holds a lease (taken by the server for it)')
    t.equal(words[slotBase(slot) + SLOT.SEQ] & 1, 1, 'and is mid-write')
    const write = server.store.write('py/lock', new Uint8Array(64).fill(5))
    child.kill('SIGKILL')
    await once(child, 'exit')
    const after = await write
    t.equal(after.generation, 2, 'the torn write became generation 1; the server\'s write went on as 2')
    t.equal(server.store.table.leases(slot), 0, 'the lease came back')
    t.equal(words[slotBase(slot) + SLOT.WRITE_LOCK], 0)
    t.ok((await server.store.read('py/lock')).bytes.every((b) => b === 5))
  })
}
