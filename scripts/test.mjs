#!/usr/bin/env node
/**
 * `npm test`: run tap over the compiled tests in dist/test (built by `npm run build`, which `pretest`
 * runs). Compiled once with tsc, each test file starts as plain JavaScript: no TypeScript loader per test
 * process, which was most of the suite's wall time. Coverage maps back to the .ts sources through the
 * source maps.
 *
 *   npm test                                   the whole suite, with coverage
 *   npm test -- test/http/errors.test.ts       one file (source paths are mapped to their build)
 *   npm test -- test/http                      one folder
 *   npm test -- --disable-coverage test/ws     without coverage, while iterating
 *
 * Before tap starts, built tests whose source is gone (renamed or deleted) are removed from dist/test, so
 * a stale copy never runs.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const builtTests = path.join(root, 'dist', 'test')

/** Remove dist/test/**.js (and its .d.ts and maps) whose test/**.ts no longer exists. */
function pruneStale (dir) {
  if (!existsSync(dir)) return
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) { pruneStale(full); continue }
    const match = /^(.*)\.(js|js\.map|d\.ts|d\.ts\.map)$/.exec(entry.name)
    if (match === null) continue
    const source = path.join(root, path.relative(path.join(root, 'dist'), dir), `${match[1]}.ts`)
    if (!existsSync(source)) rmSync(full)
  }
}

/** `test/x/y.test.ts` → `dist/test/x/y.test.js`; `test/x` → its built test files; anything else as it is. */
function toBuilt (arg) {
  if (arg.startsWith('-')) return [arg]
  const rel = path.relative(root, path.resolve(arg))
  if (rel !== 'test' && !rel.startsWith('test' + path.sep)) return [arg]
  const built = path.join('dist', rel.replace(/\.ts$/, '.js'))
  if (!existsSync(path.join(root, built))) {
    console.error(`${arg}: no build at ${built} (npm run build builds the tests)`)
    process.exit(2)
  }
  return statSync(path.join(root, built)).isDirectory() ? testFiles(built) : [built]
}

/** The built test files under a folder (tap given the folder itself would also run its helper modules). */
function testFiles (dir) {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.js'))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort()
}

/**
 * Files that take longest (several seconds each, mostly child processes), started first: tap runs files
 * in the order given, two at a time, and the suite is CPU-bound on 2 cores, so a long file left for last
 * would run alone while the other slot idles. A scheduling hint only; every test file runs either way.
 */
const LONGEST_FIRST = [
  'python/pytest', 'security/token-on-command-line', 'restart/ride-through', 'structure/public-api', 'viewer/typecheck',
  'restart/cluster', 'viewer/viewer', 'restart/sigterm-keep', 'attach/server', 'soak/short-soak', 'remote/reconnect',
  'security/worker-error', 'viewer/colour', 'worker/worker', 'viewer/viewer-auth',
]

/** Every built test file, the longest first, then the rest in path order. */
function wholeSuite () {
  const all = testFiles(path.join('dist', 'test'))
  const rank = (f) => {
    const i = LONGEST_FIRST.findIndex((name) => f.endsWith(path.join('dist', 'test', `${name}.test.js`)))
    return i === -1 ? LONGEST_FIRST.length : i
  }
  return all.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
}

pruneStale(builtTests)
const args = process.argv.slice(2).flatMap(toBuilt)
const files = args.filter((a) => !a.startsWith('-'))
const tap = path.join(root, 'node_modules', '.bin', 'tap')
const result = spawnSync(tap, files.length === 0 ? [...args, ...wholeSuite()] : args, { cwd: root, stdio: 'inherit' })
process.exit(result.status ?? 1)
