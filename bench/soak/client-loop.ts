/**
 * One soak client, whatever its transport: until the deadline, create, overwrite, read, list, describe and
 * delete images at random, checking every read against the ledger (checks.ts).
 */
import type { Entry, Ledger } from './checks.js'
import { makeFrame } from './frames.js'
import { errorCode, type Meter } from './report.js'
import type { SoakTransport } from './transports.js'

/** Image sizes the clients pick from (mode L): all larger than the 4 KiB chunk, so WebSocket puts stream. */
const SIZES: Array<[number, number]> = [[64, 96], [128, 64], [256, 128]]

export interface LoopContext {
  ledger: Ledger
  meter: Meter
  running: () => boolean
  /** A read failed: expected (NOT_FOUND of an image being deleted) or a violation. */
  readFailed: (where: string, entry: Entry, err: unknown) => void
}

/** mulberry32: small, seeded, good enough to pick operations. */
export function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Run client `owner` (its images are `<owner>/<n>`, its pixels tagged `tag`) over `transport` until the deadline. */
export async function clientLoop (owner: string, tag: number, random: () => number, transport: SoakTransport, ctx: LoopContext): Promise<void> {
  const { ledger, meter } = ctx
  const { ops, kind } = transport
  const owned: Entry[] = []
  let serial = 0
  while (ctx.running()) {
    const r = random()
    try {
      if (owned.length < 2 || (r < 0.08 && owned.length < 4)) {
        const [width, height] = SIZES[Math.floor(random() * SIZES.length)]
        const id = `${owner}/${serial++}`
        await meter.time(ops.create, async () => { await transport.create(id, width, height, makeFrame(width, height, 0, tag)) })
        const e: Entry = { id, owner, width, height, acked: 0, sent: 0, deleted: false }
        ledger.add(e)
        owned.push(e)
      } else if (r < 0.14) {
        const e = owned.shift()!
        e.deleted = true
        await meter.time(ops.delete, async () => { await transport.delete(e.id) })
        ledger.remove(e.id)
      } else if (r < 0.45) {
        const e = owned[Math.floor(random() * owned.length)]
        const version = e.acked + 1
        e.sent = version
        try {
          const generation = await meter.time(ops.put, async () => await transport.put(e.id, makeFrame(e.width, e.height, version, tag)))
          if (generation !== version) ledger.violation(`${kind} put ${e.id}: version ${version} committed as generation ${generation}`)
          e.acked = version
        } catch (err) {
          // Unknown whether it committed: stop writing it (reads still check it) and report the failure.
          owned.splice(owned.indexOf(e), 1)
          e.sent = null
          ledger.violation(`${kind} put ${e.id}: ${errorCode(err)}`)
        }
      } else if (r < 0.9) {
        const e = ledger.pick(random)
        if (e === undefined) continue
        const floor = e.acked
        try {
          const { bytes, generation } = await meter.time(ops.get, async () => await transport.get(e.id))
          ledger.checkRead(`${kind} get`, e, bytes, generation, floor, e.sent)
        } catch (err) {
          ctx.readFailed(`${kind} get`, e, err)
        }
      } else if (r < 0.95) {
        await meter.time(ops.list, async () => { await transport.list() })
      } else {
        const e = ledger.pick(random)
        if (e === undefined) continue
        try {
          await meter.time(ops.describe, async () => { await transport.describe(e.id) })
        } catch (err) {
          ctx.readFailed(`${kind} describe`, e, err)
        }
      }
    } catch (err) {
      ledger.violation(`${owner}: ${errorCode(err)} ${(err as Error).message ?? ''}`.slice(0, 300))
    }
  }
  // Its images stay for the final check; the cleanup deletes them.
}
