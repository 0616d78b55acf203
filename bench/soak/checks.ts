/**
 * The soak's ledger: what each client was told was written, and the rules every read is held to.
 *
 * Each image has exactly one writer (the client or worker that created it), and every write is one new
 * version equal to the generation it commits (created with content: version 0, generation 0). So a read of
 * generation g must hold version g, untorn; and it must not be older than the last version acknowledged to
 * the writer before the read began (no lost or stale writes), nor newer than the last version the writer had
 * sent by the time the read ended (nothing invented). Worker writers report versions after committing, so
 * for their images the upper bound is not known and only the lower one is checked.
 */
import { checkFrame } from './frames.js'

export interface Entry {
  id: string
  owner: string
  width: number
  height: number
  /** Last version whose write was acknowledged to its writer. */
  acked: number
  /** Last version sent (>= acked); null when the writer is a worker (not known here). */
  sent: number | null
  /** Its writer has started deleting it: NOT_FOUND is expected from now on. */
  deleted: boolean
}

export class Ledger {
  readonly entries = new Map<string, Entry>()
  private readonly ids: string[] = []
  readonly violations: string[] = []
  /** Frames checked, and how many of them were torn or corrupt. */
  framesChecked = 0
  torn = 0

  add (entry: Entry): void {
    this.entries.set(entry.id, entry)
    this.ids.push(entry.id)
  }

  remove (id: string): void {
    this.entries.delete(id)
    const i = this.ids.indexOf(id)
    if (i >= 0) { this.ids[i] = this.ids[this.ids.length - 1]; this.ids.pop() }
  }

  /** Any image someone may read (deleted or not). */
  pick (random: () => number): Entry | undefined {
    if (this.ids.length === 0) return undefined
    return this.entries.get(this.ids[Math.floor(random() * this.ids.length)])
  }

  violation (what: string): void {
    // Bounded: a systematic fault must not eat the memory the soak is measuring.
    if (this.violations.length < 1000) this.violations.push(what)
  }

  /**
   * Check one frame as delivered: untorn, version === generation, and (for reads, not events) within
   * [floor, ceiling] — `floor` the acked version when the read began, `ceiling` the sent one when it ended.
   */
  checkRead (where: string, entry: Pick<Entry, 'id' | 'width' | 'height'>, bytes: Uint8Array, generation: number, floor?: number, ceiling?: number | null): void {
    this.framesChecked++
    const result = checkFrame(bytes, entry.width, entry.height)
    if (!result.ok) {
      this.torn++
      this.violation(`${where} ${entry.id}@${generation}: ${result.reason}`)
      return
    }
    if (result.version !== generation) this.violation(`${where} ${entry.id}: content of version ${result.version} delivered as generation ${generation}`)
    if (floor !== undefined && result.version < floor) this.violation(`${where} ${entry.id}: stale read, version ${result.version} after version ${floor} was acknowledged`)
    if (ceiling !== undefined && ceiling !== null && result.version > ceiling) this.violation(`${where} ${entry.id}: version ${result.version} was never written (last sent ${ceiling})`)
  }
}
