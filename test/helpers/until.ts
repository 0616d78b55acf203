/**
 * Waiting for something to become true, for the few cases where there is no event to await (a counter in
 * shared memory, a child process's side effect). It fails with what it waited for, never falls through.
 */

export interface UntilOptions {
  /** Give up after this many milliseconds (default 10 s: generous for a loaded 2-core machine). */
  timeout?: number
  /** What is waited for, for the failure message (default: the condition's source); a function is asked at the end. */
  what?: string | (() => string)
  /** Milliseconds between checks (default 5). */
  interval?: number
}

/**
 * Resolve once `condition()` returns a truthy value (resolving to that value); reject with
 * "timed out after N ms waiting for <what>" if it does not within `timeout`.
 */
export async function until<T> (condition: () => T | Promise<T>, options: UntilOptions = {}): Promise<NonNullable<T>> {
  const { timeout = 10_000, interval = 5 } = options
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await condition()
    if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') return value as NonNullable<T>
    if (Date.now() >= deadline) {
      const what = typeof options.what === 'function' ? options.what() : options.what ?? condition.toString().replace(/\s+/g, ' ').slice(0, 200)
      throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}
