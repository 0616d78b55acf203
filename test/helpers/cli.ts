/**
 * Run the `pixelport` CLI: `serve` as a real child process (its URL learnt from what it prints), client
 * commands in this process (`runCli`, the program on buffers: no Node.js start-up per command) or as a
 * real child process (`spawnCli`, for what only a process shows: exit codes, signals, stdio).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Readable, Writable } from 'node:stream'
import type { Test } from 'tap'
import { pixelport, report } from '../../cli/program.js'
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

export interface CliOptions { stdin?: Buffer, env?: Record<string, string>, onStderr?: (text: string) => void }

/**
 * Run the `pixelport` program in this process to completion against `url` (PIXELPORT_URL; no
 * PIXELPORT_TOKEN unless `env` gives one), with `stdin` as its standard input (else an empty one). stdout is
 * kept as bytes; `onStderr` sees stderr as it arrives. The same program as the executable, minus the process.
 */
export async function runCli (url: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  const stdout: Buffer[] = []
  let stderr = ''
  const io = {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout: new Writable({ write (chunk: Buffer, _encoding, callback) { stdout.push(Buffer.from(chunk)); callback() } }),
    stderr: new Writable({ write (chunk: Buffer, _encoding, callback) { stderr += chunk.toString(); options.onStderr?.(stderr); callback() } }),
    env: { ...process.env, PIXELPORT_URL: url, PIXELPORT_TOKEN: '', ...options.env },
  }
  let code: number
  try {
    code = await pixelport(args, io)
  } catch (err) {
    code = report(err as Error, io)
  }
  return { code, stdout: Buffer.concat(stdout), stderr }
}

/** `runCli` as a real child process of the built CLI. */
export async function spawnCli (url: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
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
