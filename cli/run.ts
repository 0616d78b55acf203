/**
 * Run one client command (`put`, `get`, `info`, `ls`, `rm`, `watch`) and turn its failure into a message, a hint and
 * an exit code.
 */
import { CliFailure } from './failure.js'
import type { Io } from './io.js'

type Command = (argv: string[], io: Io) => Promise<number>

// Loaded on demand: a short command such as `ls` starts faster without the WebSocket client `watch` needs.
export const CLIENT_COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  put: async () => (await import('./commands/put.js')).put,
  get: async () => (await import('./commands/get.js')).get,
  info: async () => (await import('./commands/info.js')).info,
  ls: async () => (await import('./commands/ls.js')).ls,
  rm: async () => (await import('./commands/rm.js')).rm,
  watch: async () => (await import('./commands/watch.js')).watch,
}

/** Run client command `name` with `argv`; resolves with the process exit code (messages already printed). */
export async function runClientCommand (name: string, argv: string[], io: Io): Promise<number> {
  try {
    return await (await CLIENT_COMMANDS[name]())(argv, io)
  } catch (err) {
    if (err instanceof CliFailure) {
      io.stderr.write(`pixelport ${name}: ${err.message}\n`)
      if (err.hint !== undefined) io.stderr.write(`  hint: ${err.hint}\n`)
      return err.exitCode
    }
    io.stderr.write(`pixelport ${name}: ${(err as Error).message}\n`)
    return 1
  }
}
