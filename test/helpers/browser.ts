/**
 * For the viewer tests: dist/viewer built from the current sources, and Debian's Chromium.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { ROOT } from './paths.js'

export { ROOT }
const BUILT_PAGE = path.join(ROOT, 'dist/viewer/index.html')

function newest (dir: string): number {
  let time = 0
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) time = Math.max(time, statSync(path.join(entry.parentPath, entry.name)).mtimeMs)
  }
  return time
}

/**
 * Run scripts/build-viewer.mjs (esbuild, about a second) when dist/viewer is missing or older than what it
 * bundles. The script replaces files atomically, so tests running at the same time never see half a build.
 */
export async function ensureViewerBuilt (): Promise<void> {
  const built = existsSync(BUILT_PAGE) ? statSync(BUILT_PAGE).mtimeMs : 0
  const sources = Math.max(newest('viewer'), newest('client/remote'), newest('protocol'), statSync(path.join(ROOT, 'scripts/build-viewer.mjs')).mtimeMs)
  if (built >= sources) return
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts/build-viewer.mjs')], { cwd: ROOT, timeout: 60_000 })
}

const CHROMIUM = '/usr/bin/chromium'

/** The reason to skip a browser test, or false. */
export const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; CI installs it)`

/** Chromium, headless, closed when `t` ends. Open a context per test: each is a fresh profile. */
export async function launch (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  return browser
}

/** Collect what would show in the page's console as errors: none are expected. */
export function watchErrors (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`) })
  return errors
}
