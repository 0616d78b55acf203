/**
 * Issue 12 item 9: `--token` puts a secret where every user of the host can read it (ps,
 * /proc/PID/cmdline). The CLI now warns when --token is used on a non-loopback bind, and points to
 * --token-file and PIXELPORT_TOKENS, which do not show; on loopback, or with a token file, it says nothing.
 * `--cluster-token` (a token every node accepts) gets the same warning wherever the server listens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { serveCli } from '../helpers/cli.js'

const TOKEN = 'c'.repeat(32)
const WARNING = /warning: --token puts secrets on the command line.*use --token-file or PIXELPORT_TOKENS/

t.test('--token on a non-loopback bind warns', async (t) => {
  const served = await serveCli(t, ['--host', '0.0.0.0', '--token', `${TOKEN}:read`])
  t.match(served.output(), WARNING)
  t.notMatch(served.output(), /cccccccc/, 'the warning does not repeat the token')
})

t.test('--cluster-token warns wherever the server listens', async (t) => {
  // Nothing listens on port 1: the node serves alone, which is all this test needs.
  const served = await serveCli(t, ['--cluster', 'redis://127.0.0.1:1', '--cluster-token', 'k'.repeat(32)])
  t.match(served.output(), /warning: --cluster-token puts a secret on the command line.*PIXELPORT_CLUSTER_TOKEN/)
  t.notMatch(served.output(), /kkkkkkkk/)
})

t.test('--token on loopback, or a token file anywhere, does not', async (t) => {
  const loopback = await serveCli(t, ['--host', '127.0.0.1', '--token', `${TOKEN}:read`])
  t.notMatch(loopback.output(), WARNING)
  const dir = mkdtempSync(path.join(tmpdir(), 'pxp-token-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'tokens')
  writeFileSync(file, `${TOKEN}:read\n`, { mode: 0o600 })
  const fromFile = await serveCli(t, ['--host', '0.0.0.0', '--token-file', file])
  t.notMatch(fromFile.output(), WARNING)
})
