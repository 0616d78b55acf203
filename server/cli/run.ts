/**
 * Run one client command (`put`, `get`, `ls`, `rm`, `watch`) and turn its failure into a message, a hint and
 * an exit code.
 */
import { CliFailure } from './failure.js'

type Command = (argv: string[]) => Promise<number>

// Loaded on demand: a short command such as `ls` starts faster without the WebSocket client `watch` needs.
export const CLIENT_COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  put: async () => (await import('./commands/put.js')).put,
  get: async () => (await import('./commands/get.js')).get,
  ls: async () => (await import('./commands/ls.js')).ls,
  rm: async () => (await import('./commands/rm.js')).rm,
  watch: async () => (await import('./commands/watch.js')).watch,
}

export const CLIENT_HELP = `Client commands (each has --help):
  pixelport put FILE [--id ID]      upload a PNG/JPEG/WebP/TIFF, or raw bytes with --shape/--typestr
  pixelport get ID -o FILE          download as .png/.jpg/.webp/.tiff, or raw bytes
  pixelport ls [--json]             list images
  pixelport rm ID...                delete images
  pixelport watch [ID...]           live generations and frames per second
  Server from --url or PIXELPORT_URL (default http://127.0.0.1:8080), token from --token or PIXELPORT_TOKEN.
  Exit codes: 0 ok, 1 the server refused, 2 usage error, 3 server unreachable.
`

/** Run client command `name` with `argv`; resolves with the process exit code (messages already printed). */
export async function runClientCommand (name: string, argv: string[]): Promise<number> {
  try {
    return await (await CLIENT_COMMANDS[name]())(argv)
  } catch (err) {
    if (err instanceof CliFailure) {
      process.stderr.write(`pixelport ${name}: ${err.message}\n`)
      if (err.hint !== undefined) process.stderr.write(`  hint: ${err.hint}\n`)
      return err.exitCode
    }
    process.stderr.write(`pixelport ${name}: ${(err as Error).message}\n`)
    return 1
  }
}
