/**
 * The live viewer on a server with tokens: the page and its assets are public, the page asks for a token
 * (or takes it from the URL fragment), keeps it for the tab, and uses it for the WebSocket and the
 * thumbnails (fetch with an Authorization header).
 */
import t from 'tap'
import { addDemoImages } from '../../examples/demo/demo-images.js'
import { startServer } from '../helpers/server.js'
import { ensureViewerBuilt, launch, skip, watchErrors } from '../helpers/browser.js'

const TOKEN = 'viewer-test-token-0123456789'

t.test('with tokens, the page asks for one and uses it', { skip }, async (t) => {
  await ensureViewerBuilt()
  const { server, url } = await startServer(t, { tokens: [{ token: TOKEN, scopes: ['read'] }] })
  addDemoImages(server.store)
  const browser = await launch(t)

  const res = await fetch(url + '/')
  t.equal(res.status, 200, 'the page itself needs no token')
  const script = (await res.text()).match(/\/viewer\/viewer-[\w-]+\.js/)?.[0]
  t.equal((await fetch(url + script)).status, 200, 'nor its script')
  t.equal((await fetch(url + '/images/demo%2Fgradient.png')).status, 401, 'the pictures do')

  t.test('typed into the form', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(url + '/')
    await page.waitForSelector('#token-form:not([hidden])')
    t.equal(await page.textContent('#status'), 'token required')
    await page.fill('#token-input', TOKEN)
    await page.click('#token-form button')
    await page.waitForSelector('li[data-id="demo/gradient"]')
    await page.waitForFunction(() => (globalThis as any).document.querySelector('li[data-id="demo/gradient"] img').naturalWidth === 144)
    t.pass('the list and thumbnails load with the token')
    t.equal(await page.evaluate(`sessionStorage.getItem('pixelport.token')`), TOKEN, 'kept for this tab')
    await page.reload()
    await page.waitForSelector('li[data-id="demo/gradient"]')
    t.ok(await page.isHidden('#token-form'), 'a reload needs no new token')
  })

  t.test('from the URL fragment', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const errors = watchErrors(page)
    await page.goto(`${url}/#token=${TOKEN}&image=demo%2Fgradient`)
    await page.waitForFunction(() => (globalThis as any).document.getElementById('canvas').width === 256)
    t.pass('the linked image is shown')
    t.notMatch(page.url(), /token/, 'the token left the address bar')
    t.ok(await page.isHidden('#token-form'))
    t.same(errors, [])
  })

  t.test('a wrong token is refused, and the form says so', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(`${url}/#token=${'x'.repeat(32)}`)
    await page.waitForSelector('#token-form:not([hidden])')
    t.match(await page.textContent('#token-message'), /refused/)
  })
})
