/**
 * Issue 12: the Python shared-memory client raises PixelportError('PXP_ERR_CLOSED') when the server dies,
 * never BrokenPipeError, ConnectionResetError or another raw socket error. A real CLI server with --shm, a
 * real Python process holding a registration and a lease, SIGKILL, then every kind of call.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { SHM_DIR } from '../../shm/addon.js'
import { CLI, ROOT } from '../helpers/cli.js'
import { plainEnv, runChild, shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'
import { repoPath } from '../helpers/paths.js'

const PYTHON = '/usr/bin/python3'
const MODULE_DIR = repoPath('python/src')

const SCRIPT = `
import json, sys
sys.path.insert(0, sys.argv[2])
import pixelport
store = pixelport.connect(sys.argv[1])
strict = pixelport.connect(sys.argv[1], reconnect=False)
store.create(id='dies', width=4, height=4, mode='L')
img = store.open('dies')
strict_img = strict.open('dies')
generation = img.generation
print('ready', getattr(store, 'transport', 'shm'), flush=True)
sys.stdin.readline()                      # the server is killed now
seen = []
def attempt(name, fn):
    try:
        fn()
        seen.append([name, 'no error'])
    except pixelport.PixelportError as err:
        seen.append([name, err.code])
    except BaseException as err:
        seen.append([name, type(err).__name__])
def write():
    with img.write() as a:
        a[...] = 1
attempt('list', store.list)
attempt('list again', store.list)
attempt('describe', lambda: store.describe('dies'))
attempt('write', write)
attempt('open', lambda: store.open('dies'))
# The segments outlive a SIGKILL and a --recover start may adopt them: the wait rides through to its timeout.
attempt('wait_for_change', lambda: img.wait_for_change(generation, timeout=0.5))
# Without reconnect, the wait notices the registration's end.
attempt('wait_for_change, reconnect=False', lambda: strict_img.wait_for_change(generation, timeout=10))
print(json.dumps(seen), flush=True)
`

const loaded = shmAddon(t)
const numpy = loaded === null ? null : await runChild(PYTHON, ['-c', 'import numpy'])
if (numpy !== null && numpy.code !== 0) t.pass('python', { skip: `${PYTHON} has no numpy (apt-get install -y python3-numpy)` })

if (numpy?.code === 0) {
  t.test('a server killed under a Python registration: every call raises PXP_ERR_CLOSED', async (t) => {
    const prefix = testPrefix(t)
    // Our own child rather than serveCli: this one is killed with SIGKILL, which serveCli's teardown does not expect.
    const server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--shm', '--shm-prefix', prefix, '--capacity', '64M', '--block-size', '16M'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: plainEnv() })
    t.teardown(() => { if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL') })
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      server.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d
        const m = /listening on (http:\/\/\S+)/.exec(out)
        if (m !== null) resolve(m[1])
      })
      server.once('exit', (code) => reject(new Error(`the server exited with ${code}: ${out}`)))
    })
    const child = spawn(PYTHON, ['-c', SCRIPT, url, MODULE_DIR], { stdio: ['pipe', 'pipe', 'pipe'], env: plainEnv() })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    const ready = await lines.next()
    t.equal(ready.value, 'ready shm', `the client attached over shared memory\n${stderr}`)
    const exited = once(server, 'exit')
    server.kill('SIGKILL')
    await exited
    child.stdin.write('go\n')
    const result = await lines.next()
    t.ok(result.done !== true, `the client answered\n${stderr}`)
    const seen = JSON.parse(String(result.value)) as Array<[string, string]>
    t.same(seen, [
      ['list', 'PXP_ERR_CLOSED'],
      ['list again', 'PXP_ERR_CLOSED'],
      ['describe', 'PXP_ERR_CLOSED'],
      ['write', 'PXP_ERR_CLOSED'],
      ['open', 'PXP_ERR_CLOSED'],
      ['wait_for_change', 'PXP_ERR_TIMEOUT'],
      ['wait_for_change, reconnect=False', 'PXP_ERR_CLOSED'],
    ], `no BrokenPipeError, ConnectionResetError or timeout\n${stderr}`)
    await once(child, 'exit')
    // SIGKILL leaves the segments behind (the next server with this prefix would remove them).
    for (const file of shmFiles(prefix)) { try { unlinkSync(join(SHM_DIR, file)) } catch {} }
  })
}
