/**
 * `pixelport put FILE`: upload a picture file as is (the server decodes it) or raw C-order bytes.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { ImageDescriptor } from '../../../protocol/descriptor.js'
import { usage } from '../failure.js'
import { requestJson } from '../http-client.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { progressStream } from '../progress.js'

export const PUT_HELP = `Usage: pixelport put FILE [options]

Upload an image. PNG, JPEG, WebP and TIFF files are sent as they are and decoded by the server; any other
file is raw C-order pixel bytes and needs either --shape and --typestr, or --mode, --width and --height.
Prints the new image's id.

Options:
  --id ID           the image id (default: the server picks one)
  --shape H,W[,C]   raw: the array shape, e.g. 480,640,3
  --typestr T       raw: numpy typestr, e.g. |u1, <u2, <f4
  --mode MODE       raw: Pillow mode, e.g. L, RGB, RGBA, I;16
  --width N         raw: width in pixels (with --mode)
  --height N        raw: height in pixels (with --mode)
${COMMON_HELP}`

const PICTURE_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
}

const RAW_FIELDS = ['shape', 'typestr', 'mode', 'width', 'height'] as const

/** Run `pixelport put`; resolves with the exit code. */
export async function put (argv: string[]): Promise<number> {
  const { values, positionals, connection } = parseCommand('put', argv, {
    id: { type: 'string' },
    shape: { type: 'string' },
    typestr: { type: 'string' },
    mode: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
  })
  if (values.help === true) {
    process.stdout.write(PUT_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage('expected exactly one FILE', 'put')
  const file = positionals[0]
  const query = new URLSearchParams()
  if (typeof values.id === 'string') query.set('id', values.id)
  const raw = RAW_FIELDS.filter((k) => values[k] !== undefined)
  const pictureType = PICTURE_TYPES[path.extname(file).toLowerCase()]
  let contentType: string
  if (pictureType !== undefined) {
    if (raw.length > 0) throw usage(`a ${path.extname(file)} file carries its own size and mode: drop --${raw.join(', --')}`, 'put')
    contentType = pictureType
  } else {
    const byShape = values.shape !== undefined && values.typestr !== undefined
    const byMode = values.mode !== undefined && values.width !== undefined && values.height !== undefined
    if (byShape === byMode) {
      throw usage(`${file} is not a PNG, JPEG, WebP or TIFF file: give raw pixels either --shape and --typestr, or --mode, --width and --height`, 'put')
    }
    for (const k of raw) query.set(k, values[k] as string)
    contentType = 'application/octet-stream'
  }

  let size: number
  try {
    const info = await stat(file)
    if (!info.isFile()) throw usage(`${file} is not a file`, 'put')
    size = info.size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === undefined) throw err
    throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'put')
  }
  // Streamed from disk through the progress counter: the file is never held in memory whole.
  const body = createReadStream(file).pipe(progressStream(`uploading ${path.basename(file)}`, size))
  const search = query.size > 0 ? `?${query.toString()}` : ''
  const descriptor = await requestJson<ImageDescriptor>(connection, 'POST', `/images${search}`, {
    headers: { 'content-type': contentType, 'content-length': size },
    body,
  })
  process.stdout.write(`${descriptor.id}\n`)
  return 0
}
