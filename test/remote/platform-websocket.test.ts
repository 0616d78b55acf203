/**
 * The browser path: RemoteClient on a platform WebSocket (the WHATWG one browsers have), in a child
 * Node.js started with --experimental-websocket, against a real server. And the client's sources import
 * nothing Node-only at the top level, so a bundler for the browser never needs `ws` or `node:` modules.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { BUILT, modulePath, repoPath } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'

const run = promisify(execFile)

t.test('RemoteClient works on the platform WebSocket', async (t) => {
  const { url } = await startServer(t)
  const script = modulePath('test/fixtures/platform-client')
  // From source, tsx compiles the child quickly (tap's own TypeScript loader takes seconds to start).
  const { stdout } = await run(process.execPath, ['--experimental-websocket', '--no-warnings', ...(BUILT ? [] : ['--import', 'tsx']), script, url.replace(/^http/, 'ws') + '/ws'], { timeout: 60_000 })
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!)
  t.equal(result.constructed, 1, 'the platform WebSocket class was used')
  t.equal(result.wholeEqual, true, 'a 240 KB image round-trips')
  t.equal(result.dataType, 'Uint8Array')
  const expected: number[] = []
  for (let i = 0; i < 8; i++) expected.push((((20 * 300 + 10) * 4 + i) * 7) & 0xff)
  t.same(result.region, expected, 'region bytes')
  t.same(result.event, { type: 'updated', generation: 1, first: 0xff, length: 240000 }, 'a subscription frame')
  t.equal(result.error, 'PXP_ERR_NOT_FOUND')
})

t.test('no Node-only import at the top level of the client', async (t) => {
  const dir = pathToFileURL(repoPath('client/remote') + '/')
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts'))) {
    const source = await readFile(new URL(file, dir), 'utf8')
    const imports = [...source.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1])
    for (const spec of imports) {
      t.ok(spec.startsWith('.') || spec === 'msgpackr', `${file}: imports ${spec}`)
    }
  }
})
