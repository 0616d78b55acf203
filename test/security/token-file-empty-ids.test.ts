/**
 * Issue 12 item 5: a token-file entry with `"ids": []` used to grant every id (an empty list was read as
 * "no limit"). Now such a file is refused with an error naming the file and the entry, and so are the same
 * mistake in the `tokens` option and an empty IDS part in `TOKEN:SCOPES:IDS` specs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { parseTokenFile, parseTokenSpecs, TokenRegistry } from '../../server/auth/tokens.js'
import { createServer } from '../../server/server.js'
import { CLI, ROOT } from '../helpers/cli.js'

const TOKEN = 'e'.repeat(32)

t.test('a JSON token file with an empty ids list is refused, naming the entry', async (t) => {
  const text = JSON.stringify([{ token: 'f'.repeat(32), scopes: ['admin'], name: 'ops' }, { token: TOKEN, scopes: ['read', 'write'], ids: [], name: 'cam-writer' }])
  t.throws(() => parseTokenFile(text, 'tokens.json'), { code: 'PXP_ERR_VALIDATION', message: /tokens\.json: entry 2 \("cam-writer"\): ids is empty/ })
})

t.test('the tokens option and TOKEN:SCOPES: specs refuse it too', async (t) => {
  t.throws(() => new TokenRegistry([{ token: TOKEN, scopes: ['read'], ids: [] }]), { code: 'PXP_ERR_VALIDATION', message: /tokens\[0\]: ids is empty/ })
  await t.rejects(createServer({ port: 0, tokens: [{ token: TOKEN, scopes: ['read'], ids: [] }] }), { code: 'PXP_ERR_VALIDATION' })
  t.throws(() => parseTokenSpecs(`${TOKEN}:read:`, '--token'), { code: 'PXP_ERR_VALIDATION', message: /--token: TOKEN:read:: ids is empty/ })
  t.throws(() => parseTokenSpecs(`${TOKEN}:read:,`, 'PIXELPORT_TOKENS'), { code: 'PXP_ERR_VALIDATION' })
  t.notMatch(String((() => { try { parseTokenSpecs(`${TOKEN}:read:`, '--token') } catch (e) { return (e as Error).message } })()), /eeee/, 'the error never shows the token')
  // Absent ids still means every id.
  t.same(parseTokenSpecs(`${TOKEN}:read`, '--token'), [{ token: TOKEN, scopes: ['read'] }])
})

t.test('pixelport serve --token-file with "ids": [] exits with the error', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pxp-tokens-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'tokens.json')
  writeFileSync(file, JSON.stringify([{ token: TOKEN, scopes: ['read'], ids: [], name: 'viewer' }]))
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--token-file', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  child.stdout.on('data', () => {})
  const [code] = await once(child, 'exit') as [number]
  t.equal(code, 2, 'the server does not start')
  t.match(err, /tokens\.json: entry 1 \("viewer"\): ids is empty/, 'the error names the file and the entry')
})
