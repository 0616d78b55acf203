/**
 * Drive a real separate Node.js process running test/fixtures/attach-agent (built JS, or the source through
 * tsx; no coverage is measured in it).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { commandClient } from './command-client.js'
import { childArgs, plainEnv } from './shm.js'

const AGENT = 'test/fixtures/attach-agent'

export interface AttachAgent {
  child: ChildProcess
  pid: number
  call<T = any> (cmd: string, ...args: unknown[]): Promise<T>
  /** Like call, but resolves to the error `{ code, message }` (rejects if the call succeeded). */
  fail (cmd: string, ...args: unknown[]): Promise<{ code: string, message: string }>
  /** Resolves with the next unsolicited `{ event }` line the agent prints. */
  nextEvent (): Promise<Record<string, unknown>>
  /** Resolves to [exit code, signal] once the process is gone. */
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

export async function startAttachAgent (t: Test, url: string): Promise<AttachAgent> {
  const child = spawn(process.execPath, [...childArgs(AGENT), url], { stdio: ['pipe', 'pipe', 'pipe'], env: plainEnv() })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const events: Array<Record<string, unknown>> = []
  const eventWaiters: Array<(e: Record<string, unknown>) => void> = []
  const client = commandClient((request) => { child.stdin!.write(JSON.stringify(request) + '\n') },
    exited.then(([code, signal]) => `${code ?? signal}:\n${stderr}`))
  let pid = 0
  const ready = new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      const msg = JSON.parse(line)
      if (msg.ready === true) {
        pid = msg.pid
        resolve()
      } else if (msg.event !== undefined) {
        const waiter = eventWaiters.shift()
        if (waiter !== undefined) waiter(msg)
        else events.push(msg)
      } else {
        client.deliver(msg)
      }
    })
    void exited.then(([code, signal]) => reject(new Error(`attach agent exited (${code ?? signal}) before it was ready:\n${stderr}`)))
  })
  await ready
  return {
    child,
    pid,
    exited,
    call: client.call,
    fail: client.fail,
    async nextEvent () {
      const e = events.shift()
      if (e !== undefined) return e
      return await new Promise((resolve) => eventWaiters.push(resolve))
    },
  }
}

/**
 * Agents shared by the subtests of one test file: started once (a process start is the slow part), attached
 * to each subtest's server with `reattach`, killed when the file's tests end.
 */
export function agentPool (tap: Test): (t: Test, url: string, count: number) => Promise<AttachAgent[]> {
  const pool: AttachAgent[] = []
  return async (t, url, count) => {
    while (pool.length < count) pool.push(await startAttachAgent(tap, url))
    const agents = pool.slice(0, count)
    await Promise.all(agents.map(async (a) => await a.call('reattach', url)))
    // Detached before the subtest's server closes, so the next subtest starts clean.
    t.teardown(async () => { await Promise.all(agents.map(async (a) => await a.call('close'))) })
    return agents
  }
}

/** Bytes from the agent's base64. */
export function bytesOf (base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'))
}
