/**
 * `pixelport get ID -o FILE`: download a picture (format from the extension or --format) or the raw bytes.
 */
import { rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { failureOf, imagePath, withRemote } from '../remote.js'
import { startSpinner } from '../spinner.js'

export const GET_HELP = `Usage: pixelport get ID -o FILE [options]
       pixelport get ID -o - --format FORMAT > FILE

Download an image. The format comes from --format, else from the extension of FILE: .png .jpg .jpeg .webp
.tif .tiff are encoded by the server; .raw and .bin receive the raw C-order bytes (GET /images/ID/data). Any
other extension is refused. A spinner shows on a terminal while the answer takes more than a second.
Without a token, a cluster node that does not hold the image redirects the download to the node that does.

Options:
  -o, --output FILE  where to write (required); - for stdout (needs --format)
  --format FORMAT    png, jpeg, webp, tiff or raw
${COMMON_HELP}`

/** File extension or --format → the URL suffix that asks the server for it ('/data': the raw bytes). */
const FORMATS: Readonly<Record<string, string>> = {
  png: '.png',
  jpg: '.jpeg',
  jpeg: '.jpeg',
  webp: '.webp',
  tif: '.tiff',
  tiff: '.tiff',
  raw: '/data',
  bin: '/data',
}

/** Run `pixelport get`; resolves with the exit code. */
export async function get (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('get', argv, io, {
    output: { type: 'string', short: 'o' },
    format: { type: 'string' },
  })
  if (values.help === true) {
    io.stdout.write(GET_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage('expected exactly one image ID', 'get')
  if (typeof values.output !== 'string' || values.output === '') throw usage('-o FILE is required (- for stdout)', 'get')
  const id = positionals[0]
  const file = values.output
  const toStdout = file === '-'
  let suffix: string | undefined
  if (typeof values.format === 'string') {
    suffix = FORMATS[values.format.toLowerCase()]
    if (suffix === undefined) throw usage(`--format: expected png, jpeg, webp, tiff or raw, got ${JSON.stringify(values.format)}`, 'get')
  } else if (toStdout) {
    throw usage('-o - writes to stdout: say which format with --format png|jpeg|webp|tiff|raw', 'get')
  } else {
    const extension = path.extname(file).toLowerCase()
    suffix = FORMATS[extension.slice(1)]
    if (suffix === undefined) {
      throw usage(`unknown format ${JSON.stringify(extension === '' ? path.basename(file) : extension)}: name the file .png, .jpg, .webp, .tiff, or .raw/.bin for the raw bytes (or pass --format)`, 'get')
    }
  }
  if (!toStdout) {
    // A missing folder is the user's typo, not something the server refused: say so before asking it.
    const folder = path.dirname(path.resolve(file))
    const info = await stat(folder).catch(() => null)
    if (info === null || !info.isDirectory()) throw usage(`no such folder ${JSON.stringify(path.dirname(file))} for ${file}`, 'get')
  }
  const picture = suffix !== '/data'
  // The whole answer first, read by the HTTP client into one buffer of its Content-Length (its fast path),
  // then written: a refused or broken download leaves no file behind.
  const label = picture ? `encoding ${id} as ${suffix.slice(1)}` : `downloading ${id}`
  const stopSpinner = startSpinner(label, { stream: io.stderr })
  const bytes = await withRemote(connection, async ({ client }) => {
    try {
      return (await client.read(imagePath(id, suffix))).bytes
    } catch (err) {
      throw failureOf(err, connection)
    } finally {
      stopSpinner()
    }
  }, { redirect: true })
  if (toStdout) {
    // stdout is left open: it belongs to the process, not to this download.
    await written(io.stdout, bytes)
    return 0
  }
  try {
    await writeFile(file, bytes)
  } catch (err) {
    await rm(file, { force: true })
    throw err
  }
  return 0
}

/** Write `bytes` to `stream` and wait until it has taken them (a pipe may be slower than the download). */
async function written (stream: Writable, bytes: Uint8Array): Promise<void> {
  await new Promise<void>((resolve, reject) => stream.write(bytes, (err) => { if (err == null) resolve(); else reject(err) }))
}
