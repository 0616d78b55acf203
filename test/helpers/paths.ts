/**
 * Where things are. `npm test` runs the tests from their build in dist/test (plain JavaScript: no
 * TypeScript loader in each test process), but a test may also be run from its source through a
 * TypeScript loader. Every path a test needs goes through here, so both work.
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = fileURLToPath(import.meta.url)

/** True when this copy of the tests is the build in dist/test (JavaScript), false when it is the source. */
export const BUILT = here.endsWith('.js')

/** The repository root (the folder with package.json). */
export const ROOT = path.resolve(path.dirname(here), BUILT ? '../../..' : '../..')

/** The root that holds the running code: dist/ for the build, the repository root for the source. */
export const CODE_ROOT = BUILT ? path.join(ROOT, 'dist') : ROOT

/** Absolute path of a file in the repository, as checked in (README, .py scripts, .mjs fixtures, …). */
export function repoPath (...parts: string[]): string {
  return path.join(ROOT, ...parts)
}

/**
 * A TypeScript module of ours (`test/fixtures/worker-agent`, `examples/demo/pattern-worker`, without
 * extension) as the file this run executes: its build under dist/, or its source.
 */
export function modulePath (name: string): string {
  return BUILT ? path.join(ROOT, 'dist', `${name}.js`) : path.join(ROOT, `${name}.ts`)
}

/** `modulePath` as a file URL (for `new Worker(url)`). */
export function moduleUrl (name: string): URL {
  return pathToFileURL(modulePath(name))
}

/** The built CLI entry point (always the build: it is what users run). */
export const CLI = path.join(ROOT, 'dist/cli/main.js')
