/**
 * `npm run soak -- --seconds 30 --http 8 --ws 8 --workers 4 --hostile 2`: many HTTP and WebSocket clients,
 * worker writers and hostile clients (bench/soak/hostile.ts) against one loopback server for a bounded time, then the checks of bench/soak/checks.ts and the
 * memory check. Prints requests served, errors by code and p50/p99 per operation; exits 1 on any violation.
 */
import { parseArgs } from 'node:util'
import { runSoak } from './soak/engine.js'
import { formatReport } from './soak/report.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    http: { type: 'string', default: '8' },
    ws: { type: 'string', default: '8' },
    workers: { type: 'string', default: '4' },
    hostile: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
  },
})

function count (name: string, value: string | undefined, min: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${value})`)
    process.exit(2)
  }
  return n
}

const report = await runSoak({
  seconds: count('seconds', values.seconds, 1),
  http: count('http', values.http, 0),
  ws: count('ws', values.ws, 0),
  workers: count('workers', values.workers, 0),
  hostile: count('hostile', values.hostile, 0),
  seed: count('seed', values.seed, 0),
  log: (line) => console.log(line),
})
console.log('')
console.log(formatReport(report))
process.exit(report.violations.length === 0 ? 0 : 1)
