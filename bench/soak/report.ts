/**
 * Counting what the soak did — operations, errors by code, latencies — and printing it.
 */
import { fmtTime, percentile, table } from '../stats.js'

export class Meter {
  private readonly latencies = new Map<string, number[]>()
  readonly errors = new Map<string, number>()

  /** Time `fn` as operation `op`; a failure is counted under its error code and rethrown. */
  async time<T> (op: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now()
    try {
      const result = await fn()
      let list = this.latencies.get(op)
      if (list === undefined) this.latencies.set(op, list = [])
      list.push(performance.now() - start)
      return result
    } catch (err) {
      this.error(errorCode(err))
      throw err
    }
  }

  error (code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
  }

  /** Per operation: count, p50, p99 (ms). */
  summary (): Array<{ op: string, count: number, p50: number, p99: number }> {
    return [...this.latencies].sort(([a], [b]) => a.localeCompare(b)).map(([op, xs]) => ({ op, count: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) }))
  }

  get requests (): number {
    let n = 0
    for (const xs of this.latencies.values()) n += xs.length
    return n
  }
}

export function errorCode (err: unknown): string {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' ? code : `(${(err as Error)?.message ?? String(err)})`.slice(0, 80)
}

export interface SoakReport {
  seconds: number
  clients: { http: number, ws: number, workers: number, hostile: number }
  /** Hostile attempts by attack and answer (`stalled PUT: 408 PXP_ERR_UPLOAD_TIMEOUT` → count). */
  attacks: Record<string, number>
  requests: number
  operations: Array<{ op: string, count: number, p50: number, p99: number }>
  errors: Record<string, number>
  expectedErrors: Record<string, number>
  workerCommits: number
  eventsReceived: number
  framesChecked: number
  torn: number
  memory: { start: Record<string, number>, end: Record<string, number> }
  violations: string[]
}

export function formatReport (r: SoakReport): string {
  const lines: string[] = []
  lines.push(`soak: ${r.seconds} s, ${r.clients.http} HTTP + ${r.clients.ws} WebSocket clients, ${r.clients.workers} worker writers, ${r.clients.hostile} hostile clients (loopback)`)
  lines.push(`requests served: ${r.requests} (${Math.round(r.requests / r.seconds)}/s); worker commits: ${r.workerCommits}; subscription events: ${r.eventsReceived}`)
  lines.push(`frames verified: ${r.framesChecked}, torn: ${r.torn}`)
  lines.push('')
  lines.push(table(['operation', 'count', 'p50', 'p99'], r.operations.map((o) => [o.op, String(o.count), fmtTime(o.p50), fmtTime(o.p99)])))
  lines.push('')
  const codes = (m: Record<string, number>): string => Object.keys(m).length === 0 ? 'none' : Object.entries(m).map(([c, n]) => `${c} ×${n}`).join(', ')
  if (Object.keys(r.attacks).length > 0) lines.push(`hostile attempts and their answers: ${codes(r.attacks)}`)
  lines.push(`errors by code: ${codes(r.errors)}`)
  lines.push(`  of which expected (reads racing their image's delete): ${codes(r.expectedErrors)}`)
  const mem = (m: Record<string, number>): string => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ')
  lines.push(`memory at start: ${mem(r.memory.start)}`)
  lines.push(`memory at end:   ${mem(r.memory.end)}`)
  lines.push(r.violations.length === 0 ? 'violations: none' : `VIOLATIONS (${r.violations.length}):\n  ${r.violations.slice(0, 50).join('\n  ')}`)
  return lines.join('\n')
}
