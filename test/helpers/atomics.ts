/**
 * Awaiting Atomics.waitAsync in tests. A pending waitAsync does not keep Node's event loop alive
 * (nodejs/node#61941): with nothing else pending, tap would see the test end unfinished. A ref'd timer
 * for the wait's own timeout keeps the loop running until the wait settles.
 */
type WaitResult = ReturnType<typeof Atomics.waitAsync>

export async function settle (res: WaitResult, timeoutMs = 10_000): Promise<'ok' | 'not-equal' | 'timed-out'> {
  if (!res.async) return res.value
  const keepAlive = setTimeout(() => {}, timeoutMs)
  try {
    return await res.value
  } finally {
    clearTimeout(keepAlive)
  }
}
