/**
 * `pixelport rm ID…`: delete images (and their views).
 */
import { usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { call, imagePath, withRemote } from '../remote.js'

export const RM_HELP = `Usage: pixelport rm ID... [options]

Delete images, and every view of them.

${COMMON_HELP}`

/** Run `pixelport rm`; resolves with the exit code. */
export async function rm (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('rm', argv, io, {})
  if (values.help === true) {
    io.stdout.write(RM_HELP)
    return 0
  }
  if (positionals.length === 0) throw usage('expected an image ID', 'rm')
  await withRemote(connection, async (remote) => {
    for (const id of positionals) await call(remote, 'DELETE', imagePath(id))
  })
  return 0
}
