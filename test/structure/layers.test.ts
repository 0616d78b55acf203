/**
 * The layers of README "Design", enforced: dependency-cruiser (`.dependency-cruiser.cjs`, also
 * `npm run lint:deps`) over the sources must report no violation. A second part checks that the rules bite,
 * on a small tree of fixture files written for each forbidden import.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { LAYERED, layerViolations } from '../helpers/layers.js'
import { repoPath } from '../helpers/paths.js'

const folders = LAYERED.filter((folder) => existsSync(repoPath(folder)))
const violations = await layerViolations(repoPath(), folders)

t.test('the sources keep to their layers', async (t) => {
  const found = violations
  t.same(found, [], found.length === 0 ? 'no layer violations' : `layer violations:\n  ${found.join('\n  ')}`)
})

/** One forbidden import per rule, plus one allowed import per layer (which must stay silent). */
const FIXTURE: Record<string, string> = {
  'protocol/wire.ts': "import { store } from '../server/store/store.js'\nexport const wire = store\n",
  'protocol/ok.ts': "import { wire } from './wire.js'\nexport const ok = wire\n",
  'shm/addon.ts': "import { client } from '../client/remote/client.js'\nimport { ok } from '../protocol/ok.js'\nexport const addon = [client, ok]\n",
  'client/remote/client.ts': "import { server } from '../../server/server.js'\nexport const client = server\n",
  'server/server.ts': "import { client } from '../client/remote/client.js'\nexport const server = client\n",
  'server/store/store.ts': "import { route } from '../http/route.js'\nexport const store = route\n",
  'server/http/route.ts': 'export const route = 1\n',
  'viewer/view.ts': "import { server } from '../server/server.js'\nimport { client } from '../client/remote/client.js'\nexport const view = [server, client]\n",
  'examples/demo.ts': "import { server } from '../server/server.js'\nimport { client } from '../client/remote/client.js'\nexport const demo = [server, client]\n",
  'cli/a.ts': "import { b } from './b.js'\nexport const a = () => b\n",
  'cli/b.ts': "import { a } from './a.js'\nexport const b = () => a\n"
}

t.test('the rules bite: each forbidden import in a fixture tree is reported', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pxp-layers-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const [file, text] of Object.entries(FIXTURE)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await writeFile(path.join(dir, file), text)
  }
  const found = await layerViolations(dir, LAYERED.filter((folder) => existsSync(path.join(dir, folder))))
  t.same(found, [
    'client-never-imports-server: client/remote/client.ts → server/server.ts',
    'no-circular: cli/a.ts → cli/b.ts → cli/a.ts',
    'no-circular: client/remote/client.ts → server/server.ts → client/remote/client.ts',
    'protocol-imports-nothing-of-ours: protocol/wire.ts → server/store/store.ts',
    'server-never-imports-client: server/server.ts → client/remote/client.ts',
    'shm-imports-only-protocol: shm/addon.ts → client/remote/client.ts',
    'store-knows-no-transport: server/store/store.ts → server/http/route.ts',
    'viewer-imports-only-client-and-protocol: viewer/view.ts → server/server.ts'
  ])
})
