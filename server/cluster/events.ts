/**
 * Reads the cluster's event stream (Redis Streams) on the link's blocking connection.
 *
 * Why a stream rather than pub/sub: pub/sub delivers only to whoever is connected at that instant, so a
 * reader whose connection blips loses everything published meanwhile, silently. A stream is a log with
 * ids: the reader remembers the id of the last entry it handled and, after a reconnect, asks for what came
 * after it — nothing lost while the blip is shorter than the stream's length (EVENTS_MAXLEN entries), and
 * entries come in the order they were added, so per-image order holds. A node joining starts at the
 * stream's end (it loads the catalogs for the current state instead of replaying history).
 */
import { EVENTS_KEY } from './keys.js'
import type { RedisLink } from './redis-link.js'

export interface StreamEvent {
  /** Stream entry id (`ms-seq`). */
  streamId: string
  type: 'created' | 'updated' | 'deleted' | 'left'
  node: string
  /** The node's advertised URL (absent for `left`). */
  url?: string
  /** Image id (absent for `left`). */
  id?: string
  generation?: number
  /** Descriptor JSON (created/updated). */
  descriptor?: string
}

/** Entries per XREAD, and how long one XREAD blocks before it is reissued. */
const BATCH = 512
const BLOCK_MS = 2000

function parseEntry (streamId: string, fields: string[]): StreamEvent | null {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1]
  const type = f.t
  if ((type !== 'created' && type !== 'updated' && type !== 'deleted' && type !== 'left') || f.n === undefined) return null
  const event: StreamEvent = { streamId, type, node: f.n }
  if (f.u !== undefined) event.url = f.u
  if (f.i !== undefined) event.id = f.i
  if (f.g !== undefined) event.generation = Number(f.g)
  if (f.d !== undefined) event.descriptor = f.d
  return event
}

export class EventReader {
  /** The id after which the next read starts; null until start(). */
  private lastId: string | null = null
  private running: Promise<void> | null = null

  constructor (private readonly link: RedisLink, private readonly handle: (events: StreamEvent[]) => Promise<void>) {}

  /** Remember the stream's current end: events from now on are delivered, none from before. */
  async markEnd (): Promise<void> {
    if (this.lastId !== null) return
    const last = await this.link.commands.xrevrange(EVENTS_KEY, '+', '-', 'COUNT', 1)
    this.lastId = last.length > 0 ? last[0][0] : '0-0'
  }

  /** Start the read loop (runs until the link closes). */
  start (): void {
    this.running ??= this.loop()
  }

  async stopped (): Promise<void> {
    await this.running
  }

  private async loop (): Promise<void> {
    const { reader } = this.link
    while (await this.link.whenReady(reader)) {
      try {
        if (this.lastId === null) await this.markEnd()
        const reply = await reader.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', EVENTS_KEY, this.lastId!) as Array<[string, Array<[string, string[]]>]> | null
        if (reply === null) continue
        const events: StreamEvent[] = []
        for (const [, entries] of reply) {
          for (const [streamId, fields] of entries) {
            const event = parseEntry(streamId, fields)
            if (event !== null) events.push(event)
            this.lastId = streamId
          }
        }
        if (events.length > 0) await this.handle(events)
      } catch {
        // Connection lost mid-read, or Redis refused: wait for the link, then resume after lastId.
        if (!this.link.isClosed) await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
}
