/**
 * How a client command fails: every failure carries the process exit code and a hint for what to do next.
 */

/** 0 ok, 1 the server said no, 2 usage error, 3 the server could not be reached. */
export const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, UNREACHABLE: 3 } as const

/** What to try after the server refused with a given code. */
const HINTS: Readonly<Record<string, string>> = {
  PXP_ERR_NOT_FOUND: 'run "pixelport ls" to see the ids there are',
  PXP_ERR_ALREADY_EXISTS: 'pick another --id, or remove the old one with "pixelport rm ID"',
  PXP_ERR_BAD_ID: 'ids are "/"-separated segments of A-Z a-z 0-9 . _ -',
  PXP_ERR_BYTE_COUNT: 'the file size must equal the product of --shape times the item size',
  PXP_ERR_BAD_IMAGE: 'is the file a valid PNG, JPEG, WebP or TIFF?',
  PXP_ERR_CAPACITY: 'free memory with "pixelport rm ID", or start the server with a larger --capacity',
  PXP_ERR_TOO_LARGE: 'start the server with a larger --max-image-bytes',
  PXP_ERR_NOT_ENCODABLE: 'download the raw bytes instead (-o FILE.raw)',
  PXP_ERR_UNAUTHORIZED: 'pass a token with --token or PIXELPORT_TOKEN',
}

/** A failure that ends the command with `exitCode`; `message` and `hint` go to stderr. */
export class CliFailure extends Error {
  constructor (message: string, readonly exitCode: number, readonly hint?: string, readonly code?: string) {
    super(message)
    this.name = 'CliFailure'
  }
}

/** A usage error (exit 2), e.g. a missing argument or an unknown flag. */
export function usage (message: string, command: string): CliFailure {
  return new CliFailure(message, EXIT.USAGE, `see "pixelport ${command} --help"`)
}

/** The server answered with an error body `{ code, message }` (exit 1). */
export function refused (code: string, message: string): CliFailure {
  return new CliFailure(`${code}: ${message}`, EXIT.REFUSED, HINTS[code], code)
}

/** No connection to the server (exit 3). */
export function unreachable (url: string, reason: string): CliFailure {
  return new CliFailure(`cannot reach the server at ${url} (${reason})`, EXIT.UNREACHABLE,
    'is it running? start it with "npm start" (or "pixelport serve"), or point --url / PIXELPORT_URL at it')
}
