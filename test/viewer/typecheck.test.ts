/**
 * The page's sources type-check against the DOM (viewer/tsconfig.json). The project's own typecheck does
 * not see them: it has no DOM types, and esbuild strips types without checking them.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/browser.js'

t.test('tsc -p viewer', async (t) => {
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc')
  const result = await promisify(execFile)(process.execPath, [tsc, '-p', path.join(ROOT, 'viewer')], { cwd: ROOT, timeout: 120_000 })
    .then(() => ({ code: 0, output: '' }), (err: { code?: number, stdout?: string }) => ({ code: err.code ?? 1, output: err.stdout ?? '' }))
  t.equal(result.code, 0, 'no type errors')
  t.equal(result.output, '', 'nothing reported')
})
