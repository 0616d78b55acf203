#!/usr/bin/env node
/**
 * Build the shared-memory addon (native/) with node-gyp. Run by the package's `install` script.
 *
 * This script never fails the install: the addon is optional. Whatever goes wrong (no compiler, no
 * node-gyp, no headers, a failed build), it prints one line saying so and exits 0; the server then
 * reports at start-up that shared memory is unavailable and uses in-process blocks.
 *
 * Headers: node-gyp downloads Node's headers unless told where they are, and these machines have no
 * network beyond the npm registry. Under npm the project `.npmrc` supplies `nodedir`; run directly,
 * this script looks for the headers next to the running node (`<prefix>/include/node`).
 *
 * Environment: PIXELPORT_SKIP_NATIVE=1 skips the build.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const nativeDir = join(root, 'native')
const addonPath = join(nativeDir, 'build', 'Release', 'pixelport_shm.node')
const logPath = join(nativeDir, 'build-native.log')
const BUILD_TIMEOUT_MS = 180_000

/** Print the one line this script promises, and stop without failing the install. */
function finish (message) {
  console.log(`pixelport: ${message}`)
  process.exit(0)
}

/** node-gyp: the copy npm runs scripts with, else the one bundled with the npm next to this node. */
function findNodeGyp () {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ]
  return candidates.find((p) => typeof p === 'string' && p !== '' && existsSync(p)) ?? null
}

/** A directory whose include/node headers match the running node's major version, or null. */
function findNodeDir () {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..')]
  for (const dir of candidates) {
    if (typeof dir !== 'string' || dir === '') continue
    const header = join(dir, 'include', 'node', 'node_version.h')
    if (!existsSync(header)) continue
    const major = /#define NODE_MAJOR_VERSION (\d+)/.exec(readFileSync(header, 'utf8'))?.[1]
    // The V8 API is only stable within a major version: headers of another one build a broken addon.
    if (major === process.versions.node.split('.')[0]) return dir
  }
  return null
}

function main () {
  if (process.env.PIXELPORT_SKIP_NATIVE === '1') finish('native shm addon skipped (PIXELPORT_SKIP_NATIVE=1)')
  if (process.platform !== 'linux') finish(`native shm addon skipped: needs Linux, this is ${process.platform}`)
  const nodeGyp = findNodeGyp()
  if (nodeGyp === null) finish('native shm addon not built: node-gyp not found (it comes with npm); shared memory will be unavailable')
  const nodeDir = findNodeDir()
  const args = [nodeGyp, 'rebuild', `--directory=${nativeDir}`]
  const env = { ...process.env }
  if (nodeDir !== null) args.push(`--nodedir=${nodeDir}`)
  // A nodedir without matching headers (the .npmrc on a machine whose node lives elsewhere) would make
  // node-gyp fail outright; without one it uses its header cache or downloads them, where it can.
  else delete env.npm_config_nodedir

  const started = process.hrtime.bigint()
  const build = spawnSync(process.execPath, args, { cwd: nativeDir, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS, env })
  const seconds = (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)
  writeFileSync(logPath, `${build.stdout ?? ''}\n${build.stderr ?? ''}\n`)
  if (build.error !== undefined || build.status !== 0) {
    const why = build.error?.code === 'ETIMEDOUT'
      ? `timed out after ${BUILD_TIMEOUT_MS / 1000} s`
      : build.error !== undefined ? build.error.message : firstErrorLine(build.stderr) ?? `node-gyp exited with ${build.status}`
    const headers = nodeDir === null ? '; no local Node headers were found (set nodedir in .npmrc)' : ''
    finish(`native shm addon not built (${why}${headers}; log: ${logPath}); shared memory will be unavailable`)
  }
  // Building is not loading: check the result in a fresh process so a bad binary is reported now.
  const probe = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(require(process.argv[1]).apiVersion))', addonPath], { encoding: 'utf8' })
  if (probe.status !== 0) {
    finish(`native shm addon built but does not load (${firstErrorLine(probe.stderr) ?? 'unknown error'}); shared memory will be unavailable`)
  }
  finish(`native shm addon built in ${seconds} s (${addonPath})`)
}

/** The most telling line of a failed build: a compiler error, else node-gyp's error, else any error line. */
function firstErrorLine (text) {
  const lines = String(text ?? '').split('\n').map((l) => l.trim())
  const compiler = lines.find((l) => /: (fatal )?error: /.test(l))
  if (compiler !== undefined) return compiler
  // A tool that could not run at all (gyp's Python reports a missing compiler this way).
  const tool = lines.find((l) => /^[A-Z]\w*Error: /.test(l))
  if (tool !== undefined) return tool
  const gyp = lines.map((l) => /^gyp ERR! stack (\w*Error: .*)/.exec(l)?.[1]).find((l) => l !== undefined)
  if (gyp !== undefined) return gyp
  return lines.find((l) => /error/i.test(l) && !/^gyp (WARN|ERR! (cwd|node -v|node-gyp -v|System|command|not ok))/.test(l)) ?? null
}

try {
  main()
} catch (err) {
  finish(`native shm addon not built (${err instanceof Error ? err.message : String(err)}); shared memory will be unavailable`)
}
