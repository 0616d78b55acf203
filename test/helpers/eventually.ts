/**
 * Poll until a condition holds, or fail with a message once a deadline passes: for state the test cannot
 * await directly (a slot the server frees after a close it handles on its own schedule). Never falls
 * through: a condition that never holds is a failure, not an endless loop.
 */
export async function eventually (what: string, condition: () => boolean | Promise<boolean>, { timeoutMs = 5000, intervalMs = 20 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
