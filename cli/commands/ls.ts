/**
 * `pixelport ls`: the images on the server (or the whole cluster) as a table, or as JSON.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { callJson, withRemote } from '../remote.js'

export const LS_HELP = `Usage: pixelport ls [options]

List the images and views in id order: ID, SHAPE, TYPE, MODE, SIZE, GENERATION, LAYOUT.
SHAPE is the array's shape as numpy gives it, (height, width[, channels]); SIZE is the picture's
width x height; TYPE is the numpy typestr; MODE the Pillow mode (- for a raw array without one).

Options:
  --cluster        every live node's images (GET /images?scope=cluster), with a NODE column
  --json           print the server's JSON instead of a table
${COMMON_HELP}`

type Listed = ImageDescriptor & { node?: string }

interface ListPage {
  images: Listed[]
  next?: string | null
  partial?: boolean
  error?: { code: string, message: string }
}

/** Rows of cells as left-aligned columns separated by two spaces. */
export function formatTable (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n') + '\n'
}

/** numpy's spelling of a shape: (480, 640, 3); a 1-D one keeps its comma, (10,). */
export function numpyShape (shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
}

/** One table row per descriptor, in the column order LS_HELP gives. */
export function lsRow (d: Listed, cluster: boolean): string[] {
  const row = [d.id, numpyShape(d.shape), d.typestr, d.mode ?? '-', `${d.width}x${d.height}`, String(d.generation), d.view !== null ? `view of ${d.base}` : d.layout]
  return cluster ? [...row.slice(0, 1), d.node ?? '-', ...row.slice(1)] : row
}

/** Run `pixelport ls`; resolves with the exit code. */
export async function ls (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('ls', argv, io, { json: { type: 'boolean' }, cluster: { type: 'boolean' } })
  if (values.help === true) {
    io.stdout.write(LS_HELP)
    return 0
  }
  if (positionals.length > 0) throw usage(`unexpected argument ${JSON.stringify(positionals[0])}`, 'ls')
  const cluster = values.cluster === true
  // The server lists a page at a time: follow `next` to the end.
  const list: { images: Listed[], partial?: boolean } = { images: [] }
  await withRemote(connection, async (remote) => {
    for (let cursor: string | null = null; ;) {
      const query = new URLSearchParams()
      if (cluster) query.set('scope', 'cluster')
      if (cursor !== null) query.set('cursor', cursor)
      const page: ListPage = await callJson<ListPage>(remote, 'GET', query.size > 0 ? `/images?${query.toString()}` : '/images')
      list.images.push(...page.images)
      if (page.partial === true) {
        list.partial = true
        io.stderr.write(`pixelport ls: warning: the cluster catalog is unreachable, only this node's images are listed${page.error !== undefined ? ` (${page.error.code})` : ''}\n`)
      }
      if (page.next == null) break
      cursor = page.next
    }
  })
  if (values.json === true) {
    io.stdout.write(JSON.stringify(list, null, 2) + '\n')
    return 0
  }
  if (list.images.length === 0) {
    io.stdout.write('no images; add one with "pixelport put FILE"\n')
    return 0
  }
  const header = ['ID', 'SHAPE', 'TYPE', 'MODE', 'SIZE', 'GENERATION', 'LAYOUT']
  const rows = [cluster ? ['ID', 'NODE', ...header.slice(1)] : header, ...list.images.map((d) => lsRow(d, cluster))]
  io.stdout.write(formatTable(rows))
  return 0
}
