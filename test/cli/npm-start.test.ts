/**
 * `npm start` runs the server as npm's child: ending npm must end the server, whether npm passes the
 * signal on (SIGTERM: the start script `exec`s node, so npm's child is the server itself) or dies without
 * a word (SIGKILL: the server, started by an npm script, notices that its parent changed).
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { ROOT } from '../helpers/cli.js'
import { until } from '../helpers/until.js'

/** Pids of the children of `pid` (every thread's list). */
function childrenOf (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter((p) => p !== '').map(Number))
  } catch {
    return []
  }
}

/** True while `pid` runs (a zombie waiting to be reaped counts as ended). */
function running (pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** `npm start` on a free port; resolves with npm, the server's pid and its URL once it listens. */
async function npmStart (t: Test): Promise<{ npm: ChildProcess, server: number, url: string }> {
  const npm = spawn('npm', ['start'], { cwd: ROOT, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  npm.stdout!.on('data', (b: Buffer) => { out += b.toString() })
  npm.stderr!.on('data', (b: Buffer) => { out += b.toString() })
  const url = await until(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], { what: () => `npm start to print its URL:\n${out}`, timeout: 30_000, interval: 50 })
  const find = (pid: number): number | undefined => {
    for (const child of childrenOf(pid)) {
      if (readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('dist/cli/main.js')) return child
      const deeper = find(child)
      if (deeper !== undefined) return deeper
    }
    return undefined
  }
  const server = find(npm.pid!)
  if (server === undefined) throw new Error('no server process under npm')
  t.teardown(() => {
    if (running(server)) process.kill(server, 'SIGKILL')
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL')
  })
  return { npm, server, url }
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  t.test(`${signal} to npm start ends the server`, async (t) => {
    const { npm, server, url } = await npmStart(t)
    t.equal((await fetch(url + '/healthz')).status, 200, 'serving')
    const exited = once(npm, 'exit')
    npm.kill(signal)
    await exited
    await until(() => !running(server), { what: `the server (pid ${server}) to exit after ${signal} to npm`, timeout: 15_000 })
    await t.rejects(fetch(url + '/healthz'), 'the port is closed')
  })
}
