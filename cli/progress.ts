/**
 * A one-line progress bar on stderr for transfers that last longer than a moment.
 *
 * Hand-written rather than a dependency: all it takes is a carriage return and a percentage, and the CLI
 * ships inside the server package, where every dependency is one more thing to install and audit.
 */
import { Transform, type TransformCallback, type Writable } from 'node:stream'

export interface ProgressOptions {
  /** Where to draw; drawing happens only when it is a TTY. Default process.stderr. */
  stream?: Writable & { isTTY?: boolean }
  /** Stay silent for transfers shorter than this. Default 300 ms. */
  delayMs?: number
}

function human (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++ }
  return `${bytes.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

/**
 * A pass-through stream that counts bytes and, on a TTY after `delayMs`, redraws
 * `label [#####-----] 42% 1.2 MiB/3.0 MiB` at most ten times a second. `total` may be unknown.
 */
export function progressStream (label: string, total: number | undefined, options: ProgressOptions = {}): Transform {
  const out = options.stream ?? process.stderr
  const tty = out.isTTY === true
  const started = Date.now()
  const delay = options.delayMs ?? 300
  let done = 0
  let lastDraw = 0
  let drawn = false
  const draw = (final: boolean): void => {
    const now = Date.now()
    if (!tty || now - started < delay || (!final && now - lastDraw < 100)) return
    lastDraw = now
    drawn = true
    const width = 30
    const known = total !== undefined && total > 0
    const ratio = known ? Math.min(1, done / total) : 0
    const bar = known ? `[${'#'.repeat(Math.round(ratio * width)).padEnd(width, '-')}] ${Math.floor(ratio * 100)}% ` : ''
    out.write(`\r${label} ${bar}${human(done)}${known ? '/' + human(total) : ''}\x1b[K`)
  }
  return new Transform({
    transform (chunk: Buffer, _enc, callback: TransformCallback) {
      done += chunk.length
      draw(false)
      callback(null, chunk)
    },
    flush (callback: TransformCallback) {
      draw(true)
      if (drawn) out.write('\n')
      callback()
    },
  })
}
