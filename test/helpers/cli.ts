/**
 * Run the built `pixelport` CLI as a real child process and learn its URL from what it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { CLI, ROOT } from './paths.js'

export { CLI, ROOT }

export interface Served { child: ChildProcess, url: string, output: () => string }

/** Run `pixelport serve --port 0 ARGS` (with `env` added to this process's environment) until the test ends. */
export async function serveCli (t: Test, args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr!.on('data', (b: Buffer) => { out += b.toString() })
  t.teardown(async () => {
    // A child a test killed has a signalCode and no exitCode: waiting for its 'exit' again would hang.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed within 20 s:\n${out}`)), 20_000)
    const check = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m !== null) { clearTimeout(timer); resolve(m[1]) }
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code}:\n${out}`)) })
  })
  return { child, url, output: () => out }
}

export interface CliResult { code: number | null, stdout: Buffer, stderr: string }

/**
 * Run a client command of the built CLI to completion against `url` (PIXELPORT_URL; no PIXELPORT_TOKEN
 * unless `env` gives one), with `stdin` as its standard input (else none). stdout is kept as bytes;
 * `onStderr` sees stderr as it arrives.
 */
export async function runCli (url: string, args: string[], options: { stdin?: Buffer, env?: Record<string, string>, onStderr?: (text: string) => void } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, PIXELPORT_URL: url, PIXELPORT_TOKEN: '', ...options.env },
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  })
  const stdout: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (b: Buffer) => stdout.push(b))
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); options.onStderr?.(stderr) })
  if (options.stdin !== undefined) {
    // A command refused before it read all of its input (e.g. a 507 on the first bytes) closes the pipe.
    child.stdin!.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err })
    child.stdin!.end(options.stdin)
  }
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout: Buffer.concat(stdout), stderr }
}
