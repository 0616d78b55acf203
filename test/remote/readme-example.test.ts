/**
 * The README's RemoteClient examples, extracted from README.md as written and run against a real server:
 * the Node.js one as a child process (`pixelport/client` pointed at this build), the browser one bundled
 * with esbuild and run in Chromium on a page of the server's origin.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import * as esbuild from 'esbuild'
import { addDemoImages } from '../../examples/demo/demo-images.js'
import { launch, skip, watchErrors } from '../helpers/browser.js'
import { modulePath, repoPath, ROOT } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'

/** The ```js block that follows the README line `<!-- runs ... in test/remote/readme-example.test.ts -->`. */
async function readmeBlock (marker: string): Promise<string> {
  const readme = await readFile(repoPath('README.md'), 'utf8')
  const at = readme.indexOf(`<!-- ${marker} test/remote/readme-example.test.ts -->`)
  if (at < 0) throw new Error(`README.md has no block marked "${marker}"`)
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at))
  if (block === null) throw new Error(`no js block after the "${marker}" marker`)
  return block[1]
}

t.test('the Node.js example runs as written against a server with a token', async (t) => {
  const token = 'readme-token-0123456789'
  const { url, server } = await startServer(t, { tokens: [{ token, scopes: ['read', 'write'] }] })
  const code = await readmeBlock('runs in')
  t.match(code, /from 'pixelport\/client'/, 'imports the package as users do')
  const dir = t.testdir({})
  const file = path.join(dir, 'hello-remote.mjs')
  // The package's own name resolves only inside the package: point it at this build instead.
  await writeFile(file, code.replace("'pixelport/client'", JSON.stringify(pathToFileURL(modulePath('client/remote/index')).href)))
  const child = spawn(process.execPath, [file], { env: { ...process.env, PIXELPORT_URL: url, PIXELPORT_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const [exitCode] = await once(child, 'close') as [number]
  t.equal(exitCode, 0, stderr)
  const lines = stdout.trim().split('\n')
  t.equal(lines[0], 'created remote/hello')
  t.equal(lines[1], '[ 2, 4 ] 200')
  t.match(lines[2], /'remote\/hello'/)
  t.same(server.store.list().map((d) => d.id), [], 'and it cleaned up after itself')
})

t.test('the browser example runs in Chromium', { skip }, async (t) => {
  const { url, server } = await startServer(t)
  addDemoImages(server.store)
  const code = await readmeBlock('runs in Chromium in')
  const bundle = await esbuild.build({
    stdin: { contents: code, resolveDir: ROOT, sourcefile: 'app.js', loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    alias: { 'pixelport/client': path.join(ROOT, 'client/remote/index.ts') },
    external: ['ws'],
    write: false,
    logLevel: 'silent',
  })
  const script = bundle.outputFiles[0].text
  const browser = await launch(t)
  const page = await (await browser.newContext()).newPage()
  const errors = watchErrors(page)
  // A page of the server's own origin, as an app served next to it would be. A real response of the
  // server (not one faked by page.route): Chromium lets only those reach a loopback WebSocket.
  await page.route('**/favicon.ico', (route) => route.fulfill({ status: 204 })) // the server has none: no 404 in the console
  await page.goto(`${url}/healthz`)
  await page.addScriptTag({ type: 'module', content: script })
  await page.waitForFunction(() => (globalThis as any).document.title.startsWith('demo/gradient'), undefined, { timeout: 15_000 })
    .catch((err: Error) => { throw new Error(`${err.message}; page errors: ${errors.join('; ') || 'none'}`) })
  const gradient = server.store.describe('demo/gradient')
  t.equal(await page.title(), `demo/gradient ${gradient.width}x${gradient.height}, generation ${gradient.generation}`)
  const first = await page.evaluate(() => Array.from((globalThis as any).document.querySelector('canvas').getContext('2d').getImageData(1, 1, 1, 1).data as number[]))
  const bytes = (await server.store.read('demo/gradient')).bytes.subarray((gradient.width + 1) * 3, (gradient.width + 1) * 3 + 3)
  t.same(first, [...bytes, 255], 'the canvas shows the image\'s pixels')
  t.same(errors, [], 'no errors in the console')
})
