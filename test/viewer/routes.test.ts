/**
 * Serving the viewer (server/http/viewer-routes.ts) without a browser: the page and its hashed assets with
 * isolation and cache headers, nothing outside the build directory, a registry 404 when the page is not
 * built, and no token needed for the page on a server that requires tokens for everything else.
 */
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { installErrorHandler } from '../../server/http/error-handler.js'
import { viewerRoutes } from '../../server/http/viewer-routes.js'
import { startServer } from '../helpers/server.js'
import { ensureViewerBuilt } from '../helpers/browser.js'

async function serve (t: Test, files: Record<string, string>): Promise<string> {
  const app = Fastify()
  installErrorHandler(app)
  const dir = t.testdir({ dist: files, 'secret.txt': 'not for the web' })
  await app.register(viewerRoutes, { directory: pathToFileURL(`${dir}/dist/`) })
  t.teardown(() => app.close())
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

t.test('the page and its assets', async (t) => {
  const url = await serve(t, { 'index.html': '<!doctype html><p>hi', 'viewer-ABC123.js': 'export {}', 'style-ABC123.css': 'p{}', 'viewer-ABC123.js.map': '{}' })
  const page = await fetch(url + '/')
  t.equal(page.status, 200)
  t.equal(await page.text(), '<!doctype html><p>hi')
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin')
  t.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp')
  t.equal(page.headers.get('cross-origin-resource-policy'), 'same-origin')
  t.equal(page.headers.get('cache-control'), 'no-cache', 'the page is revalidated: it names the current assets')
  t.match(page.headers.get('content-security-policy'), /connect-src 'self'/)

  for (const [name, type] of [['viewer-ABC123.js', /^text\/javascript/], ['style-ABC123.css', /^text\/css/], ['viewer-ABC123.js.map', /^application\/json/]] as const) {
    const res = await fetch(`${url}/viewer/${name}`)
    t.equal(res.status, 200, name)
    t.match(res.headers.get('content-type'), type)
    t.match(res.headers.get('cache-control'), /immutable/, 'hashed names are cached for good')
    t.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin')
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  }
  const head = await fetch(url + '/', { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD too')

  for (const path of ['/viewer/missing-X.js', '/viewer/..%2Fsecret.txt', '/viewer/%2E%2E%2Fsecret.txt', '/viewer/.hidden.js', '/viewer/index.txt', '/secret.txt']) {
    const res = await fetch(url + path)
    t.equal(res.status, 404, path)
    t.equal((await res.json() as { code: string }).code, 'PXP_ERR_ROUTE_NOT_FOUND')
  }
  const redirect = await fetch(url + '/viewer/index.html', { redirect: 'manual' })
  t.equal(redirect.status, 301)
  t.equal(redirect.headers.get('location'), '/')
})

t.test('not built: a 404 that says what to do', async (t) => {
  const url = await serve(t, {})
  const res = await fetch(url + '/')
  t.equal(res.status, 404)
  const body = await res.json() as { code: string, message: string }
  t.equal(body.code, 'PXP_ERR_ROUTE_NOT_FOUND')
  t.match(body.message, /npm run build/)
})

t.test('on the real server: public even with tokens, and not in the API document', async (t) => {
  await ensureViewerBuilt()
  const { url } = await startServer(t, { tokens: [{ token: 'routes-test-token-0123456789', scopes: ['read'] }] })
  const page = await fetch(url + '/')
  t.equal(page.status, 200, 'GET / needs no token')
  const html = await page.text()
  const assets = [...html.matchAll(/\/viewer\/[\w.-]+/g)].map((m) => m[0])
  t.equal(assets.length, 2, 'the page names its script and stylesheet')
  for (const asset of assets) t.equal((await fetch(url + asset)).status, 200, `${asset} needs no token`)
  t.equal((await fetch(url + '/images')).status, 401, 'the API does')
  const doc = await (await fetch(url + '/docs/json')).json() as { paths: Record<string, unknown> }
  t.same(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/viewer')), [], 'the page is not an API route')
})
