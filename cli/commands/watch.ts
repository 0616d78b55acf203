/**
 * `pixelport watch [ID…]`: live events over the WebSocket protocol, one line per image per second with its
 * generation, frames per second and skipped frames.
 */
import { RemoteClient } from '../../client/remote/index.js'
import { isPixelportError } from '../../protocol/errors.js'
import { refused, unreachable, usage } from '../failure.js'
import type { Io } from '../io.js'
import { COMMON_HELP, parseCommand } from '../options.js'

export const WATCH_HELP = `Usage: pixelport watch [ID...] [options]

Print, once a second, one line per image that changed: id, generation, frames per second and frames
skipped (the server sends only the latest when the terminal falls behind). All images without an ID.
An ID that does not exist yet is waited for: its lines start when it is created. Ends on Ctrl-C.

Options:
  --count N        stop after N events
${COMMON_HELP}`

interface Rate { generation: number, frames: number, skipped: number, type: string }

/** Run `pixelport watch`; resolves with the exit code. */
export async function watch (argv: string[], io: Io): Promise<number> {
  const { values, positionals, connection } = parseCommand('watch', argv, io, { count: { type: 'string' } })
  if (values.help === true) {
    io.stdout.write(WATCH_HELP)
    return 0
  }
  let limit = Infinity
  if (values.count !== undefined) {
    limit = Number(values.count)
    if (!Number.isInteger(limit) || limit < 1) throw usage(`--count: expected a whole number above 0, got ${JSON.stringify(values.count)}`, 'watch')
  }
  let client: RemoteClient
  try {
    // The same base URL as every other command: RemoteClient finds /ws under it.
    client = await RemoteClient.connect(connection.url, { ...(connection.token !== undefined ? { token: connection.token } : {}), clientName: 'pixelport-cli', timeout: 5000 })
  } catch (err) {
    if (isPixelportError(err) && err.code !== 'PXP_ERR_CLOSED' && err.code !== 'PXP_ERR_TIMEOUT') throw refused(err.code, err.message, connection.tokenSource)
    throw unreachable(connection.url, (err as Error).message)
  }
  // Watching an id before it exists is allowed (the subscription covers it), but say so: it is also what
  // a typo looks like.
  const missing: string[] = []
  for (const id of positionals) {
    try {
      await client.describe(id)
    } catch (err) {
      if (isPixelportError(err) && err.code === 'PXP_ERR_NOT_FOUND') missing.push(id)
      else if (isPixelportError(err)) {
        await client.close()
        throw refused(err.code, err.message, connection.tokenSource)
      } else throw err
    }
  }

  const rates = new Map<string, Rate>()
  let windowStart = Date.now()
  const report = (): void => {
    const seconds = Math.max(0.001, (Date.now() - windowStart) / 1000)
    windowStart = Date.now()
    for (const [id, r] of rates) {
      if (r.frames === 0) continue
      const fps = r.type === 'deleted' ? 'deleted' : `fps ${(r.frames / seconds).toFixed(1)}`
      io.stdout.write(`${id}  generation ${r.generation}  ${fps}  skipped ${r.skipped}\n`)
      r.frames = 0
      r.skipped = 0
    }
  }
  const timer = setInterval(report, 1000)
  const subscription = await client.subscribe({ ...(positionals.length > 0 ? { ids: positionals } : {}), policy: 'latest' })
  const stop = (): void => { void subscription.close() }
  process.once('SIGINT', stop)
  io.stderr.write(`watching ${positionals.length > 0 ? positionals.join(', ') : 'all images'} on ${connection.url}\n`)
  for (const id of missing) io.stderr.write(`${id} does not exist yet: waiting for it to be created\n`)
  let seen = 0
  try {
    for await (const event of subscription) {
      const rate = rates.get(event.id) ?? { generation: 0, frames: 0, skipped: 0, type: event.type }
      rate.generation = event.generation
      rate.frames++
      rate.skipped += event.skipped
      rate.type = event.type
      rates.set(event.id, rate)
      if (++seen >= limit) break
    }
  } catch (err) {
    if (isPixelportError(err) && err.code !== 'PXP_ERR_CLOSED') throw refused(err.code, err.message, connection.tokenSource)
    if (isPixelportError(err)) throw unreachable(connection.url, err.message)
    throw err
  } finally {
    clearInterval(timer)
    process.off('SIGINT', stop)
    report()
    await client.close()
  }
  return 0
}
