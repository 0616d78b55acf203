/**
 * `pixelport ls`: the images on the server as a table, or as JSON.
 */
import type { ImageDescriptor } from '../../../protocol/descriptor.js'
import { usage } from '../failure.js'
import { requestJson } from '../http-client.js'
import { COMMON_HELP, parseCommand } from '../options.js'

export const LS_HELP = `Usage: pixelport ls [options]

List the images and views: id, mode, size, generation, layout.

Options:
  --json           print the server's JSON instead of a table
${COMMON_HELP}`

interface ListPage {
  images: ImageDescriptor[]
  next?: string | null
}

/** Rows of cells as left-aligned columns separated by two spaces. */
export function formatTable (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n') + '\n'
}

/** Run `pixelport ls`; resolves with the exit code. */
export async function ls (argv: string[]): Promise<number> {
  const { values, positionals, connection } = parseCommand('ls', argv, { json: { type: 'boolean' } })
  if (values.help === true) {
    process.stdout.write(LS_HELP)
    return 0
  }
  if (positionals.length > 0) throw usage(`unexpected argument ${JSON.stringify(positionals[0])}`, 'ls')
  // The server lists a page at a time: follow `next` to the end.
  const list: { images: ImageDescriptor[] } = { images: [] }
  for (let cursor: string | null = null; ;) {
    const page: ListPage = await requestJson<ListPage>(connection, 'GET', cursor === null ? '/images' : `/images?cursor=${encodeURIComponent(cursor)}`)
    list.images.push(...page.images)
    if (page.next == null) break
    cursor = page.next
  }
  if (values.json === true) {
    process.stdout.write(JSON.stringify(list, null, 2) + '\n')
    return 0
  }
  if (list.images.length === 0) {
    process.stdout.write('no images; add one with "pixelport put FILE"\n')
    return 0
  }
  const rows = [['ID', 'MODE', 'SIZE', 'GENERATION', 'LAYOUT']]
  for (const d of list.images) {
    rows.push([d.id, d.mode ?? `${d.typestr} ${d.shape.join('x')}`, `${d.width}x${d.height}`, String(d.generation), d.view !== null ? `view of ${d.base}` : d.layout])
  }
  process.stdout.write(formatTable(rows))
  return 0
}
