/**
 * The `pixelport` program (./main.ts runs it): `pixelport serve` starts the server (./serve.ts);
 * put/get/info/ls/rm/watch (./commands/) talk to one. Global options may come before the command, as with
 * git and docker. Everything it reads and writes goes through an Io, so tests can run it in-process.
 */
import { usage, EXIT } from './failure.js'
import type { Io } from './io.js'
import { COMMANDS, MAIN_HELP, version } from './help.js'
import { CLIENT_COMMANDS, runClientCommand } from './run.js'
import { didYouMean } from './suggest.js'

/** Options taken before the command, and whether each takes a value. */
const GLOBAL_FLAGS: Readonly<Record<string, boolean>> = { '--url': true, '--token': true, '--json': false, '--version': false, '--help': false }
const SHORT_FLAGS: Readonly<Record<string, string>> = { '-V': '--version', '-h': '--help' }
/** Commands whose output --json changes. */
const JSON_COMMANDS = new Set(['ls', 'info'])

interface Split {
  globals: Map<string, string | true>
  command: string | undefined
  rest: string[]
}

/** Split `argv` into the global options before the command, the command and its own arguments. */
export function splitGlobals (argv: readonly string[]): Split {
  const globals = new Map<string, string | true>()
  let i = 0
  for (; i < argv.length && argv[i].startsWith('-') && argv[i] !== '-'; i++) {
    const [rawName, inline] = argv[i].split(/=(.*)/s, 2) as [string, string | undefined]
    const name = SHORT_FLAGS[rawName] ?? rawName
    if (!Object.hasOwn(GLOBAL_FLAGS, name)) {
      throw usage(`unknown global option ${rawName}${didYouMean(rawName, Object.keys(GLOBAL_FLAGS))} (a command's own options go after it)`, 'help')
    }
    if (!GLOBAL_FLAGS[name]) {
      globals.set(name, true)
    } else if (inline !== undefined) {
      globals.set(name, inline)
    } else {
      if (i + 1 >= argv.length) throw usage(`${name} needs a value`, 'help')
      globals.set(name, argv[++i])
    }
  }
  return { globals, command: argv[i], rest: argv.slice(i + 1) }
}

/** Run `pixelport ARGV`; resolves with the exit code. Rejects with a usage error (see `report`). */
export async function pixelport (argv: readonly string[], io: Io): Promise<number> {
  const { globals, command, rest } = splitGlobals(argv)
  if (globals.has('--version')) {
    io.stdout.write(`pixelport ${version()}\n`)
    return EXIT.OK
  }
  if (command === undefined || globals.has('--help')) {
    // `pixelport --help put` reads like `pixelport help put`.
    return await help(command === undefined ? [] : [command], io)
  }
  if (command === 'help') return await help(rest, io)
  if (command === 'serve') {
    const misplaced = [...globals.keys()]
    if (misplaced.length > 0) throw usage(`${misplaced.join(', ')}: options of the client commands, not of serve (see "pixelport serve --help")`, 'serve')
    const { serve } = await import('./serve.js')
    await serve(rest)
    return EXIT.OK
  }
  if (!Object.hasOwn(CLIENT_COMMANDS, command)) {
    throw usage(`unknown command ${JSON.stringify(command)}${didYouMean(command, COMMANDS.map(([name]) => name))}`, 'help')
  }
  // Global options go first, so the command's own (later) ones win.
  const forwarded: string[] = []
  for (const name of ['--url', '--token'] as const) {
    const value = globals.get(name)
    if (typeof value === 'string') forwarded.push(`${name}=${value}`)
  }
  if (globals.has('--json')) {
    if (!JSON_COMMANDS.has(command)) throw usage(`--json applies to ${[...JSON_COMMANDS].join(' and ')}, not to ${command}`, command)
    forwarded.push('--json')
  }
  return await runClientCommand(command, [...forwarded, ...rest], io)
}

/** `pixelport help [COMMAND]`. */
async function help (args: string[], io: Io): Promise<number> {
  const [name] = args
  if (name === undefined || name === 'help') {
    io.stdout.write(MAIN_HELP)
    return EXIT.OK
  }
  if (name === 'serve') {
    io.stdout.write((await import('./serve-options.js')).SERVE_HELP)
    return EXIT.OK
  }
  if (Object.hasOwn(CLIENT_COMMANDS, name)) return await runClientCommand(name, ['--help'], io)
  throw usage(`no command ${JSON.stringify(name)}${didYouMean(name, COMMANDS.map(([n]) => n))}`, 'help')
}

/** Print a failure that ended the program (a usage error, or serve failing to start); returns its exit code. */
export function report (err: Error & { exitCode?: number, hint?: string }, io: Io): number {
  io.stderr.write(`pixelport: ${err.message}\n`)
  if (err.hint !== undefined) io.stderr.write(`  hint: ${err.hint}\n`)
  return err.exitCode ?? EXIT.USAGE
}
