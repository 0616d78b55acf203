/**
 * `pixelport get ID -o FILE`: download a picture (format from the extension) or the raw bytes.
 */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { usage } from '../failure.js'
import { request } from '../http-client.js'
import { COMMON_HELP, imageUrlPath, parseCommand } from '../options.js'
import { progressStream } from '../progress.js'

export const GET_HELP = `Usage: pixelport get ID -o FILE [options]

Download an image. The extension of FILE picks the format: .png .jpg .jpeg .webp .tif .tiff are encoded by
the server; anything else receives the raw C-order bytes (GET /images/ID/data).

Options:
  -o, --output FILE  where to write (required)
${COMMON_HELP}`

const PICTURE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'])

/** Run `pixelport get`; resolves with the exit code. */
export async function get (argv: string[]): Promise<number> {
  const { values, positionals, connection } = parseCommand('get', argv, { output: { type: 'string', short: 'o' } })
  if (values.help === true) {
    process.stdout.write(GET_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage('expected exactly one image ID', 'get')
  if (typeof values.output !== 'string' || values.output === '') throw usage('-o FILE is required', 'get')
  const id = positionals[0]
  const file = values.output
  const extension = path.extname(file).toLowerCase()
  const urlPath = PICTURE_EXTENSIONS.has(extension) ? imageUrlPath(id, extension) : imageUrlPath(id, '/data')
  // Ask before creating the file, so a refused download leaves nothing behind.
  const response = await request(connection, 'GET', urlPath)
  const length = Number(response.headers['content-length'])
  try {
    await pipeline(response, progressStream(`downloading ${id}`, Number.isFinite(length) ? length : undefined), createWriteStream(file))
  } catch (err) {
    await rm(file, { force: true })
    throw err
  }
  return 0
}
