/**
 * `pixelport info ID`: one image's descriptor, as aligned lines or as the server's JSON.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { describe, withRemote } from '../remote.js'
import { numpyShape } from './ls.js'

export const INFO_HELP = `Usage: pixelport info ID [options]

Show an image's descriptor (GET /images/ID): shape as numpy gives it (height, width[, channels]), size as
width x height, typestr, mode, bytes, generation, layout, strides, and for a view the image it shows.

Options:
  --json           print the descriptor's JSON (what numpy's __array_interface__ needs is in it)
${COMMON_HELP}`

/** The descriptor as `name  value` lines. */
export function describeLines (d: ImageDescriptor): string {
  const ai = d.__array_interface__
  const lines: Array<[string, string]> = [
    ['id', d.id],
    ['shape', numpyShape(d.shape)],
    ['size', `${d.width}x${d.height} (width x height), ${d.channels} channel${d.channels === 1 ? '' : 's'}`],
    ['typestr', d.typestr],
    ['mode', d.mode ?? '- (raw array)'],
    ['bytes', String(d.byteLength)],
    ['generation', String(d.generation)],
    ['layout', d.layout + (d.copied ? ' (read as a contiguous copy)' : '')],
    ['readonly', String(d.readonly)],
    ['strides', ai?.strides == null ? 'C-contiguous' : numpyShape(ai.strides)],
  ]
  if (d.view !== null) lines.push(['view of', `${d.view.parent} at x ${d.view.x}, y ${d.view.y}, ${d.view.width}x${d.view.height}`])
  if (d.owner !== undefined) lines.push(['owner', `${d.owner}${d.stale === true ? ' (stale: the owner is gone)' : ''}`])
  const width = Math.max(...lines.map(([name]) => name.length))
  return lines.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n') + '\n'
}

/** Run `pixelport info`; resolves with the exit code. */
export async function info (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('info', argv, io, { json: { type: 'boolean' } })
  if (values.help === true) {
    io.stdout.write(INFO_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage('expected exactly one image ID', 'info')
  const descriptor = await withRemote(connection, async (remote) => await describe(remote, positionals[0]))
  io.stdout.write(values.json === true ? JSON.stringify(descriptor, null, 2) + '\n' : describeLines(descriptor))
  return 0
}
