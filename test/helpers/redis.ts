/**
 * A real redis-server for one test: a loopback port of its own, no persistence, its own directory; stopped
 * at teardown. `restart()` stops it and starts an empty one on the same port (what a Redis restart without
 * persistence looks like to the nodes).
 *
 * Redis cannot listen on port 0 and report the port it got, so a port is chosen and then bound, and that
 * leaves a window in which another process may take it. The server runs in the foreground as our child, so
 * we know for certain whether *it* bound the port ("Ready to accept connections") or failed to (it exits);
 * on failure another port is tried. A test never talks to a Redis that is not its own.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'

export const REDIS_SERVER = '/usr/bin/redis-server'
const START_ATTEMPTS = 5
const START_TIMEOUT_MS = 10_000

export interface TestRedis {
  readonly port: number
  readonly url: string
  /** Stop (SIGTERM) and wait until the process is gone. */
  stop (): Promise<void>
  /** Start again on the same port, empty. */
  start (): Promise<void>
  /** stop() then start(). */
  restart (): Promise<void>
}

/** A loopback port that was free a moment ago (see the comment at the top for why that is enough here). */
async function candidatePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Run redis-server on `port`; resolves with the child once it accepts connections, rejects if it exits. */
async function launch (dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--logfile', ''], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`redis-server on port ${port} not ready within ${START_TIMEOUT_MS} ms:\n${output}`)) }, START_TIMEOUT_MS)
    const onData = (b: Buffer): void => {
      output += b.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        child.stdout!.resume()
        resolve(child)
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (b: Buffer) => { output += b.toString() })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`redis-server on port ${port} exited (${code ?? signal}):\n${output}`)) })
  })
}

/** Start redis-server for test `t` (stopped and its directory removed at teardown). */
export async function startRedis (t: Test): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-redis-'))
  let child: ChildProcess | null = null
  let port = 0
  for (let attempt = 1; child === null; attempt++) {
    port = await candidatePort()
    try {
      child = await launch(dir, port)
    } catch (err) {
      if (attempt >= START_ATTEMPTS) throw err
    }
  }

  async function stop (): Promise<void> {
    const running = child
    child = null
    if (running === null || running.exitCode !== null || running.signalCode !== null) return
    const exited = once(running, 'exit')
    running.kill('SIGTERM')
    await exited
  }

  async function start (): Promise<void> {
    if (child !== null) return
    child = await launch(dir, port)
  }

  t.teardown(async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { port, url: `redis://127.0.0.1:${port}`, start, stop, restart: async () => { await stop(); await start() } }
}
