/**
 * `pixelport get ID -o FILE`: download a picture (format from the extension or --format) or the raw bytes.
 */
import { createWriteStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { progressStream } from '../progress.js'
import { bodyStream, call, imagePath } from '../remote.js'

export const GET_HELP = `Usage: pixelport get ID -o FILE [options]
       pixelport get ID -o - --format FORMAT > FILE

Download an image. The format comes from --format, else from the extension of FILE: .png .jpg .jpeg .webp
.tif .tiff are encoded by the server (a spinner shows on a terminal while a large one takes more than a
second); .raw and .bin receive the raw C-order bytes (GET /images/ID/data). Any other extension is refused.

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
  // Ask before creating the file, so a refused download leaves nothing behind.
  const response = await call(connection, 'GET', imagePath(id, suffix), picture ? { spinner: `encoding ${id} as ${suffix.slice(1)}`, stderr: io.stderr } : {})
  const length = Number(response.headers.get('content-length') ?? NaN)
  const sink: Writable = toStdout ? io.stdout : createWriteStream(file)
  try {
    // stdout is left open: it belongs to the process, not to this download.
    await pipeline(bodyStream(response), progressStream(`downloading ${id}`, Number.isFinite(length) ? length : undefined, { stream: io.stderr }), sink, { end: !toStdout })
  } catch (err) {
    if (!toStdout) await rm(file, { force: true })
    throw err
  }
  return 0
}
