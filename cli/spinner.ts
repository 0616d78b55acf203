/**
 * A spinner with the elapsed time on stderr, for waits with nothing to count: the server encoding a large
 * picture sends no byte until it is done, which may take seconds.
 */

export interface SpinnerOptions {
  /** Where to draw; drawing happens only when it is a TTY. Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean }
  /** Stay silent for waits shorter than this. Default 1000 ms. */
  delayMs?: number
  /** Redraw interval. Default 100 ms. */
  intervalMs?: number
}

const FRAMES = ['|', '/', '-', '\\']

/**
 * Start waiting on `label`; the returned function stops the spinner and erases its line. Nothing is drawn
 * when the stream is not a TTY (a pipe or a log file gets no carriage returns) or the wait is short.
 */
export function startSpinner (label: string, options: SpinnerOptions = {}): () => void {
  const out = options.stream ?? process.stderr
  if (out.isTTY !== true) return () => {}
  const started = Date.now()
  let frame = 0
  let drawn = false
  const draw = (): void => {
    drawn = true
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    out.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label} ${seconds} s\x1b[K`)
  }
  let timer: NodeJS.Timeout | undefined
  const delay = setTimeout(() => {
    draw()
    timer = setInterval(draw, options.intervalMs ?? 100)
    timer.unref()
  }, options.delayMs ?? 1000)
  delay.unref()
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    clearTimeout(delay)
    clearInterval(timer)
    if (drawn) out.write('\r\x1b[K')
  }
}
