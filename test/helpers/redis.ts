/**
 * A real redis-server for one test: free loopback port, no persistence, its own directory; stopped at
 * teardown. `restart()` stops it and starts an empty one on the same port (what a Redis restart without
 * persistence looks like to the nodes).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)
export const REDIS_SERVER = '/usr/bin/redis-server'

export interface TestRedis {
  readonly port: number
  readonly url: string
  /** Stop (SIGTERM) and wait until the port is closed. */
  stop (): Promise<void>
  /** Start again on the same port, empty. */
  start (): Promise<void>
  /** stop() then start(). */
  restart (): Promise<void>
}

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function canConnect (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

async function until (what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`redis-server: ${what} within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Start redis-server for test `t` (stopped and its directory removed at teardown). */
export async function startRedis (t: Test): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pxp-redis-'))
  const port = await freePort()
  const pidfile = path.join(dir, 'redis.pid')
  let running = false

  async function start (): Promise<void> {
    await run(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'yes', '--dir', dir, '--pidfile', pidfile, '--logfile', path.join(dir, 'redis.log')])
    running = true
    await until('not accepting connections', () => canConnect(port))
  }

  async function stop (): Promise<void> {
    if (!running) return
    running = false
    let pid = 0
    await until('no pidfile', async () => {
      try {
        pid = Number(readFileSync(pidfile, 'utf8').trim())
        return pid > 0
      } catch {
        return false
      }
    })
    try { process.kill(pid, 'SIGTERM') } catch {}
    await until('still accepting connections', async () => !await canConnect(port))
    await until('still running', async () => {
      try { process.kill(pid, 0); return false } catch { return true }
    })
  }

  await start()
  t.teardown(async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { port, url: `redis://127.0.0.1:${port}`, start, stop, restart: async () => { await stop(); await start() } }
}
