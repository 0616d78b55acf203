/**
 * The Python package (python/): installed offline into a fresh venv with Debian's numpy, msgpack, websockets,
 * Pillow and pytest (`pip install --no-deps --no-build-isolation --no-index`), then its pytest suite
 * (python/tests) run against real servers it starts from dist/ — every transport, every README example.
 * Each pytest outcome becomes one tap assertion, so its counts are in tap's totals.
 */
import t from 'tap'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { plainEnv, runChild, shmAddon } from '../helpers/shm.js'
import { ROOT } from '../helpers/paths.js'

const PYTHON = '/usr/bin/python3'
const PACKAGE = join(ROOT, 'python')

t.setTimeout(600_000)

/** `tests/test_x.py::name[param] PASSED` lines of `pytest -v` → [id, outcome]. */
export function outcomes (output: string): Array<[string, string]> {
  const found: Array<[string, string]> = []
  for (const line of output.split('\n')) {
    const m = /^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b/.exec(line)
    if (m !== null) found.push([m[1], m[2]])
  }
  return found
}

/** pytest's closing line, e.g. `=== 270 passed, 2 skipped in 11.08s ===` → { passed: 270, skipped: 2 }. */
export function summary (output: string): Record<string, number> | null {
  const line = output.split('\n').reverse().find((l) => /^=+ .*\bin [\d.]+s\b.* =+$/.test(l))
  if (line === undefined) return null
  const counts: Record<string, number> = {}
  for (const m of line.matchAll(/(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)/g)) {
    counts[m[2].replace(/s$/, '')] = Number(m[1])  // 'errors' → 'error', 'warnings' → 'warning'
  }
  return counts
}

const loaded = shmAddon(t)
const deps = loaded === null ? null : await runChild(PYTHON, ['-c', 'import numpy, msgpack, websockets, PIL, pytest, setuptools, venv'])
if (deps !== null && deps.code !== 0) {
  const message = `${PYTHON} lacks a package: apt-get install -y python3-numpy python3-msgpack python3-websockets python3-pil python3-pytest python3-venv\n${deps.stderr}`
  if (process.env.PIXELPORT_REQUIRE_SHM === '1') t.fail(message)
  else t.pass('python package', { skip: message })
}

if (deps?.code === 0) {
  const dir = mkdtempSync(join(tmpdir(), 'pixelport-py-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const venv = join(dir, 'venv')
  const python = join(venv, 'bin', 'python')

  await t.test('pip installs the package offline into a venv', async (t) => {
    const made = await runChild(PYTHON, ['-m', 'venv', '--system-site-packages', venv])
    t.equal(made.code, 0, made.stderr)
    // From a copy: pip builds in the source folder, which must stay clean (and other runs may share it).
    const source = join(dir, 'src')
    cpSync(PACKAGE, source, { recursive: true, filter: (p) => !/\/(build|__pycache__|\.pytest_cache|[^/]*\.egg-info)$/.test(p) })
    const pip = await runChild(python, ['-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index', '--disable-pip-version-check', source],
      { env: { ...plainEnv(), PIP_NO_INPUT: '1' } })
    t.equal(pip.code, 0, pip.stderr + pip.stdout)
    const where = await runChild(python, ['-c', 'import pixelport; print(pixelport.__file__)'], { cwd: dir })
    t.match(where.stdout.trim(), `${venv}/lib/`, 'imported from the venv\'s site-packages')
  })

  await t.test('the pytest suite passes against real servers, on every transport', async (t) => {
    t.ok(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)')
    // faulthandler_timeout: a test stuck for 120 s prints every thread's stack (then the deadline below ends it).
    const run = runChild(python, ['-m', 'pytest', '-v', '-p', 'no:cacheprovider', '--color=no', '-o', 'faulthandler_timeout=120', 'tests'], {
      cwd: PACKAGE,
      env: { ...plainEnv(), PYTHONDONTWRITEBYTECODE: '1', PIXELPORT_ROOT: ROOT, PIXELPORT_NODE: process.execPath, PIXELPORT_EXPECT_PREFIX: venv },
      timeout: 480_000,
      killSignal: 'SIGKILL',
    })
    const r = await run
    const output = r.stdout + r.stderr
    const results = outcomes(r.stdout)
    const counts = summary(r.stdout)
    t.ok(counts !== null, `pytest printed its summary line:\n${output.slice(-3000)}`)
    for (const [id, outcome] of results) {
      if (outcome === 'PASSED' || outcome === 'XFAIL') t.pass(`pytest ${id}`)
      else if (outcome === 'SKIPPED') t.pass(`pytest ${id}`, { skip: 'skipped by pytest' })
      else t.fail(`pytest ${id}: ${outcome}`, { diag: output.slice(-6000) })
    }
    t.equal(results.filter(([, o]) => o === 'PASSED').length, counts?.passed ?? -1, 'one assertion per pytest pass')
    t.ok((counts?.passed ?? 0) >= 250, `the whole suite ran (${counts?.passed} passed)`)
    t.equal(r.code, 0, `pytest exit code (${JSON.stringify(counts)})`)
    t.comment(`pytest: ${JSON.stringify(counts)}`)
  })
}
