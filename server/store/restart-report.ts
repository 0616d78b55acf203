/**
 * What a start found of the previous store (adopted shared memory, refused segments, stale ones removed,
 * images loaded from `persist`), as `server.recovery` and as the lines the start-up log prints.
 */
import type { Refusal } from '../memory/shm-adopt.js'
import type { StaleCleanup } from '../../shm/names.js'
import type { AdoptReport } from './adopt.js'

export interface RecoveryReport {
  /** The dead store taken over (`shm.recover`), or null. */
  adopted: AdoptReport | null
  /** Stores found but refused (another layout version, a corrupted table): left in place. */
  refused: Refusal[]
  /** Store ids of dead stores whose segments were removed at start. */
  removedStale: string[]
  /** `persist`: images loaded, and files skipped with the reason (null without persist). */
  persisted: { dir: string, loaded: number, skipped: string[] } | null
  /** One line each, for the log: what happened and, when stale stores were removed, that --recover exists. */
  notes: Array<{ level: 'info' | 'warn' | 'error', message: string }>
}

export function recoveryReport (
  recover: boolean, adopted: AdoptReport | null, refused: Refusal[], stale: StaleCleanup | null,
  persisted: RecoveryReport['persisted'],
): RecoveryReport {
  const notes: RecoveryReport['notes'] = []
  for (const r of refused) {
    notes.push({ level: 'error', message: `recover: refused store ${r.storeId}: ${r.reason}; its files are left in place: ${r.files.join(', ')}` })
  }
  if (adopted !== null) {
    notes.push({
      level: 'info',
      message: `recover: adopted store ${adopted.storeId}: ${adopted.images} images (${adopted.views} views), ${adopted.locksRecovered} write locks of dead writers recovered (${adopted.tornWritesClosed} writes in progress closed as new generations), ${adopted.claimsReturned} leases/pins/loans given back, ${adopted.dropped} deleted or replica records dropped`,
    })
  } else if (recover) {
    notes.push({ level: refused.length > 0 ? 'error' : 'info', message: `recover: no store to adopt${refused.length > 0 ? ' (see above)' : ''}; starting empty` })
  }
  const removed = stale?.removed ?? []
  if (removed.length > 0) {
    notes.push({
      level: 'warn',
      message: `removed the segments of ${removed.length} dead store(s) (${stale!.removedFiles} files: ${removed.join(', ')})${recover ? '' : '; start with --recover to adopt a dead store\'s images instead'}`,
    })
  }
  if (persisted !== null) {
    notes.push({ level: persisted.skipped.length > 0 ? 'warn' : 'info', message: `persist: loaded ${persisted.loaded} images from ${persisted.dir}${persisted.skipped.length > 0 ? `; skipped ${persisted.skipped.join('; ')}` : ''}` })
  }
  return { adopted, refused, removedStale: removed, persisted, notes }
}
