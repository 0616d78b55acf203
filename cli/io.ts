/**
 * Where a command reads and writes: the process's streams and environment when run as `pixelport`, or
 * buffers when a test runs a command in-process (no child process, no second Node.js start-up).
 */
import type { Readable, Writable } from 'node:stream'

export interface Io {
  stdin: Readable
  /** A progress bar or spinner is drawn only on a TTY. */
  stdout: Writable & { isTTY?: boolean }
  stderr: Writable & { isTTY?: boolean }
  env: Readonly<Record<string, string | undefined>>
}

/** The process's own streams and environment. */
export function processIo (): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }
}
