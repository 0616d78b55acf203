/**
 * Helpers for the shared-memory tests: the addon (or a clear skip), a per-test segment prefix with
 * clean-up, and running a real child process to completion.
 */
import { spawn, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { loadShmAddon, SHM_DIR, type ShmAddon } from '../../shm/addon.js'
import { BUILT, modulePath, repoPath } from './paths.js'

export const ADDON_CHILD = repoPath('test/fixtures/shm-addon-child.mjs')
export const STORE_CHILD = 'test/fixtures/shm-store-child'

/**
 * The addon, or null after skipping `t` with the reason it is unavailable. PIXELPORT_REQUIRE_SHM=1 turns
 * the skip into a failure (for machines where the build must work).
 */
export function shmAddon (t: Test): { addon: ShmAddon, path: string } | null {
  const loaded = loadShmAddon()
  if (loaded.addon !== null) return { addon: loaded.addon, path: loaded.path }
  if (process.env.PIXELPORT_REQUIRE_SHM === '1') t.fail(`shared memory required but unavailable: ${loaded.reason}`)
  else t.pass('shared-memory tests', { skip: `shared memory unavailable: ${loaded.reason}` })
  return null
}

/**
 * A segment prefix no other test or server uses; every file with it is removed when `t` ends, so a failed
 * test does not leave segments behind.
 */
export function testPrefix (t: Test): string {
  const prefix = 'pxpt_' + randomBytes(6).toString('hex')
  t.teardown(() => {
    for (const file of shmFiles(prefix)) {
      try { unlinkSync(join(SHM_DIR, file)) } catch {}
    }
  })
  return prefix
}

/** Files in /dev/shm whose names start with `<prefix>-`, sorted. */
export function shmFiles (prefix: string): string[] {
  return readdirSync(SHM_DIR).filter((f) => f.startsWith(prefix + '-')).sort()
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Run a child process to its end and collect its output. */
export function runChild (command: string, args: string[], options: SpawnOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/**
 * Environment for plain-JS children: without the test runner's NODE_OPTIONS (its coverage hooks slow every
 * start-up and there is none of our source to cover in them).
 */
export function plainEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

/** Run the plain-JS addon child (`test/fixtures/shm-addon-child.mjs`) with one command. */
export function runAddonChild (addonPath: string, args: string[]): Promise<ChildResult> {
  return runChild(process.execPath, [ADDON_CHILD, addonPath, ...args], { env: plainEnv() })
}

/**
 * Node arguments that run one of our modules (`test/fixtures/shm-store-child`, no extension) as a child
 * process: its build when the tests run built, else its source through tsx (much faster to start than the
 * test runner's loader). Use with `plainEnv()`: coverage measured through tsx would be wrong.
 */
export function childArgs (name: string): string[] {
  return BUILT ? [modulePath(name)] : ['--import', 'tsx', modulePath(name)]
}
