/**
 * The test side of test/fixtures/command-loop.ts: numbered requests, replies matched by id, and an end
 * when the agent dies (every pending and later call then fails with code EXITED).
 */

export interface Reply { id: number, ok: boolean, result?: unknown, error?: { code: string, message: string } }

export interface CommandClient {
  call<T = any> (cmd: string, ...args: unknown[]): Promise<T>
  /** Like call, but resolves to the error `{ code, message }` (rejects if the call succeeded). */
  fail (cmd: string, ...args: unknown[]): Promise<{ code: string, message: string }>
  /** Feed a reply that arrived from the agent. */
  deliver (reply: Reply): void
}

/** `send` posts a request; `exited` settles (with a description) when the agent is gone. */
export function commandClient (send: (request: { id: number, cmd: string, args: unknown[] }) => void, exited: Promise<string>): CommandClient {
  let next = 1
  const pending = new Map<number, (reply: Reply) => void>()
  const request = async (cmd: string, args: unknown[]): Promise<Reply> => {
    const id = next++
    const reply = new Promise<Reply>((resolve) => pending.set(id, resolve))
    send({ id, cmd, args })
    return await Promise.race([reply, exited.then((why) => ({ id, ok: false, error: { code: 'EXITED', message: `agent exited (${why})` } }))])
  }
  return {
    async call (cmd, ...args) {
      const r = await request(cmd, args)
      if (!r.ok) throw Object.assign(new Error(r.error!.message), { code: r.error!.code })
      return r.result as any
    },
    async fail (cmd, ...args) {
      const r = await request(cmd, args)
      if (r.ok) throw new Error(`${cmd} succeeded but was expected to fail`)
      return r.error!
    },
    deliver (reply) {
      pending.get(reply.id)?.(reply)
      pending.delete(reply.id)
    },
  }
}
