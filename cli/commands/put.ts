/**
 * `pixelport put FILE`: upload a picture file as is (the server decodes it) or raw C-order bytes; `-` reads
 * stdin; `--replace` overwrites an existing image (HTTP PUT of its bytes) instead of failing.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { Readable, Transform } from 'node:stream'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { CliFailure, usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'
import { progressStream } from '../progress.js'
import { callJson, describe, imagePath, withRemote, type Remote } from '../remote.js'

export const PUT_HELP = `Usage: pixelport put FILE [options]
       pixelport put - --id ID --shape H,W[,C] --typestr T < FILE

Upload an image. PNG, JPEG, WebP and TIFF files are sent as they are and decoded by the server; any other
file is raw C-order pixel bytes and needs either --shape and --typestr, or --mode, --width and --height.
FILE - reads stdin: a picture then needs --format, raw bytes the layout flags. Prints the image's id.

Options:
  --id ID           the image id (default: the server picks one)
  --replace         overwrite image ID when it exists (a new generation, same shape and type; the
                    picture is decoded here then); create it when it does not
  --format FORMAT   png, jpeg, webp, tiff or raw (default: from the file's extension)
  --shape H,W[,C]   raw: the array shape, e.g. 480,640,3
  --typestr T       raw: numpy typestr, e.g. |u1, <u2, <f4
  --mode MODE       raw: Pillow mode, e.g. L, RGB, RGBA, I;16
  --width N         raw: width in pixels (with --mode)
  --height N        raw: height in pixels (with --mode)
${COMMON_HELP}`

const PICTURE_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
}

const RAW_FIELDS = ['shape', 'typestr', 'mode', 'width', 'height'] as const

/** The file's size, or a usage error naming what is wrong with it. */
async function sizeOf (file: string): Promise<number> {
  try {
    const info = await stat(file)
    if (!info.isFile()) throw usage(`${file} is not a file`, 'put')
    return info.size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === undefined) throw err
    throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'put')
  }
}

/**
 * The byte count raw pixels of this layout must have, or undefined when the flags do not make a valid
 * layout (the server then says what is wrong).
 */
async function rawByteLength (values: Record<string, unknown>): Promise<number | undefined> {
  const { specFromRequest } = await import('../../protocol/spec.js')
  const request = values.mode !== undefined
    ? { mode: values.mode as string, width: Number(values.width), height: Number(values.height) }
    : { shape: String(values.shape).split(',').map(Number), typestr: values.typestr as string }
  try {
    return specFromRequest(request, { maxDimension: Number.MAX_SAFE_INTEGER, maxImageBytes: Number.MAX_SAFE_INTEGER }).byteLength
  } catch {
    return undefined
  }
}

/**
 * stdin, held to exactly `length` bytes. The request declares that length up front: the server can then
 * refuse (507, 413) before the body, and a pipe that ends early cannot leave it waiting for the rest.
 */
function exactly (length: number): Transform {
  let seen = 0
  const wrong = (): CliFailure => usage(`stdin gave ${seen === length ? 'more than' : seen} bytes, the image needs exactly ${length}`, 'put')
  return new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      seen += chunk.byteLength
      callback(seen > length ? wrong() : null, chunk)
    },
    flush (callback) {
      callback(seen === length ? null : wrong())
    },
  })
}

/** `first` piped through `rest`, with an error anywhere passed on to the end (where the upload sees it). */
function chain (first: Readable, ...rest: Transform[]): Readable {
  let stream = first
  for (const next of rest) {
    stream.once('error', (err) => next.destroy(err))
    stream = stream.pipe(next)
  }
  return stream
}

/** The descriptor of `id`, or null when there is no such image. */
async function existing (remote: Remote, id: string): Promise<ImageDescriptor | null> {
  try {
    return await describe(remote, id)
  } catch (err) {
    if (err instanceof CliFailure && err.code === 'PXP_ERR_NOT_FOUND') return null
    throw err
  }
}

/**
 * A picture decoded here into the raw bytes of `target` (HTTP PUT takes raw bytes only). Decoded exactly as
 * the server would decode an upload, so `put --replace` of the file that created an image fits it.
 */
async function decodeFor (target: ImageDescriptor, bytes: Buffer, file: string): Promise<Buffer> {
  const { planDecode, decodePixels } = await import('../../server/formats/decode.js')
  const { DEFAULT_SPEC_LIMITS } = await import('../../protocol/spec.js')
  let plan
  try {
    plan = await planDecode(bytes, { ...DEFAULT_SPEC_LIMITS, maxImageBytes: Math.max(target.byteLength, 1) })
  } catch (err) {
    throw new CliFailure(`${file}: ${(err as Error).message}`, 1, 'is the file a valid PNG, JPEG, WebP or TIFF of the image\'s size?', (err as { code?: string }).code)
  }
  const { shape, byteLength } = plan.spec
  if (shape.join(',') !== target.shape.join(',') || byteLength !== target.byteLength) {
    throw usage(`${file} decodes to shape (${shape.join(', ')}) of ${byteLength} bytes, but ${target.id} is (${target.shape.join(', ')}) ${target.typestr} of ${target.byteLength} bytes: --replace keeps an image's shape and type (rm it and put again to change them)`, 'put')
  }
  return await decodePixels(bytes, plan)
}

/** Run `pixelport put`; resolves with the exit code. */
export async function put (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('put', argv, io, {
    id: { type: 'string' },
    replace: { type: 'boolean' },
    format: { type: 'string' },
    shape: { type: 'string' },
    typestr: { type: 'string' },
    mode: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
  })
  if (values.help === true) {
    io.stdout.write(PUT_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage('expected exactly one FILE (- for stdin)', 'put')
  const file = positionals[0]
  const stdin = file === '-'
  const name = stdin ? 'stdin' : file
  if (values.replace === true && typeof values.id !== 'string') throw usage('--replace needs the --id of the image to overwrite', 'put')
  let format = typeof values.format === 'string' ? values.format.toLowerCase() : undefined
  if (format !== undefined && format !== 'raw' && PICTURE_TYPES[format] === undefined) {
    throw usage(`--format: expected png, jpeg, webp, tiff or raw, got ${JSON.stringify(values.format)}`, 'put')
  }
  const raw = RAW_FIELDS.filter((k) => values[k] !== undefined)
  if (format === undefined && !stdin) {
    const extension = path.extname(file).toLowerCase().slice(1)
    if (PICTURE_TYPES[extension] !== undefined) format = extension
  }
  // Raw from stdin needs no layout flags when it replaces an image: the image has one.
  if (format === undefined && (raw.length > 0 || (stdin && values.replace === true))) format = 'raw'
  if (format === undefined && stdin) throw usage('put - reads stdin: give --format png|jpeg|webp|tiff, or the raw layout (--shape and --typestr)', 'put')
  const pictureType = format === undefined ? undefined : PICTURE_TYPES[format]
  if (pictureType !== undefined && raw.length > 0) throw usage(`a ${format!} picture carries its own size and mode: drop --${raw.join(', --')}`, 'put')
  const size = stdin ? undefined : await sizeOf(file)

  return await withRemote(connection, async (remote) => {
    // --replace of an image that exists: PUT its bytes (the layout flags, if any, must agree with it).
    const target = values.replace === true ? await existing(remote, values.id as string) : null
    if (target !== null) {
      if (values.shape !== undefined && values.shape !== target.shape.join(',')) {
        throw usage(`${target.id} has shape ${target.shape.join(',')}, not ${values.shape as string}: --replace keeps an image's shape`, 'put')
      }
      let body: Readable
      let length: number | undefined
      if (pictureType !== undefined) {
        const pixels = await decodeFor(target, stdin ? Buffer.concat(await io.stdin.toArray() as Buffer[]) : await readFile(file), name)
        body = Readable.from([pixels])
        length = pixels.byteLength
      } else {
        length = size ?? target.byteLength
        const progress = progressStream(`uploading ${path.basename(name)}`, length, { stream: io.stderr })
        body = stdin ? chain(io.stdin, exactly(length), progress) : chain(createReadStream(file), progress)
      }
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' }
      if (length !== undefined) headers['content-length'] = length
      const descriptor = await callJson<ImageDescriptor>(remote, 'PUT', imagePath(target.id, '/data'), { headers, body })
      io.stdout.write(`${descriptor.id}\n`)
      return 0
    }

    const query = new URLSearchParams()
    if (typeof values.id === 'string') query.set('id', values.id)
    if (pictureType === undefined) {
      const byShape = values.shape !== undefined && values.typestr !== undefined
      const byMode = values.mode !== undefined && values.width !== undefined && values.height !== undefined
      if (byShape === byMode) {
        throw usage(`${name} is not a PNG, JPEG, WebP or TIFF file: give raw pixels either --shape and --typestr, or --mode, --width and --height`, 'put')
      }
      for (const k of raw) query.set(k, values[k] as string)
    }
    // Streamed from disk (or stdin) through the progress counter: the file is never held in memory whole.
    const length = size ?? (pictureType === undefined ? await rawByteLength(values) : undefined)
    const progress = progressStream(`uploading ${path.basename(name)}`, length, { stream: io.stderr })
    const body = stdin && length !== undefined ? chain(io.stdin, exactly(length), progress) : chain(stdin ? io.stdin : createReadStream(file), progress)
    const headers: Record<string, string | number> = { 'content-type': pictureType ?? 'application/octet-stream' }
    if (length !== undefined) headers['content-length'] = length
    const search = query.size > 0 ? `?${query.toString()}` : ''
    const descriptor = await callJson<ImageDescriptor>(remote, 'POST', `/images${search}`, { headers, body })
    io.stdout.write(`${descriptor.id}\n`)
    return 0
  })
}
