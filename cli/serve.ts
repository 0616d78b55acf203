/**
 * `pixelport serve`: parse the server's flags (and their environment variables) and run it until a signal.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { readFileSync } from 'node:fs'
import { parseTokenFile, parseTokenSpecs } from '../server/auth/tokens.js'
import type { ServerOptions } from '../server/options.js'
import { usage } from './failure.js'
import { parseArgsMessage } from './suggest.js'

export const SERVE_HELP = `Usage: pixelport serve [options]

Options (environment variable in brackets):
  --host HOST            interface to listen on (default 127.0.0.1) [HOST]
  --port N               port, 0 for any free one (default 8080) [PORT]
  --capacity SIZE        total image memory, e.g. 512M, 4G (default: 1/4 of RAM, at most 16G)
  --block-size SIZE      shared block size (default 64M)
  --max-images N         most images and views at once (default 16384)
  --max-image-bytes SIZE largest single image (default 1G)
  --snapshot-bytes SIZE  memory for copies served to remote readers (default 512M)
  --evict POLICY         when capacity or --max-images is reached: none (default) refuses with 507;
                         lru evicts the least recently used images no one holds open [PIXELPORT_EVICT]
  --shm                  blocks and image table in POSIX shared memory (/dev/shm), so other processes
                         on this host map them (pixelport/attach, numpy); falls back to in-process
                         memory with a warning where unavailable [PIXELPORT_SHM=1]
  --shm-mode MODE        file mode of the segments: 600 (default), 640 or 660 to share with the group
  --shm-prefix NAME      first part of every segment name (default pixelport)
  --recover              adopt the segments of a dead store with this prefix (crash, kill -9, --keep)
                         instead of removing them: every image comes back with its id and generation
  --keep                 on SIGTERM/SIGINT leave the segments in place for the next --recover start
  --persist DIR          without --shm: save every image to DIR on graceful shutdown, load at start
  --token TOKEN:SCOPES[:IDS]
                         accept this bearer token (repeatable); SCOPES from read,write,admin; IDS limits
                         it to ids, e.g. cam1/*,cam2/main [PIXELPORT_TOKENS, ';'-separated]
  --token-file FILE      tokens from FILE: lines of TOKEN:SCOPES[:IDS], or JSON
                         [{ token, scopes, ids?, name? }]  [PIXELPORT_TOKEN_FILE]
  --insecure             allow a non-loopback --host without tokens (trusted networks only)
  --cors ORIGIN          let pages from ORIGIN call the API (repeatable; default: CORS off) [PIXELPORT_CORS]
  --allowed-host NAME    also answer requests for Host NAME or NAME:PORT (repeatable); on a loopback
                         --host every other name but localhost/127.0.0.1/[::1] gets 421 (DNS
                         rebinding) [PIXELPORT_ALLOWED_HOSTS, ','-separated]
  --max-connections-per-client N
                         WebSocket connections one address may hold (default 64)
  --max-connections-per-token N
                         WebSocket connections one token may hold, from any address (default 64)
  --max-event-loop-delay MS
                         above this, /ready and the API answer 503 PXP_ERR_OVERLOADED (default 1000, 0 off)
  --staging-budget SIZE  bytes all uploads in progress may hold together (default: the larger of 256M and
                         --max-image-bytes); beyond it an upload is refused with 503 PXP_ERR_STAGING_FULL
                         [PIXELPORT_STAGING_BUDGET]
  --upload-idle-timeout MS
                         abort an upload whose body sends nothing for MS (default 30000)
                         [PIXELPORT_UPLOAD_IDLE_TIMEOUT]
  --upload-deadline MS   abort an upload whose body is not complete after MS (default 600000)
                         [PIXELPORT_UPLOAD_DEADLINE]
  --cluster URL          join the cluster coordinated by the Redis at URL (redis://HOST:PORT): catalog,
                         heartbeats and events in Redis; pixels stay on their node [PIXELPORT_CLUSTER]
  --advertise URL        this node's base URL as the other nodes reach it, e.g. http://10.0.0.5:8080
                         (default: the listening URL; required with --host 0.0.0.0) [PIXELPORT_ADVERTISE]
  --node-id NAME         node name in the cluster (default HOSTNAME-PORT) [PIXELPORT_NODE_ID]
  --cluster-token TOKEN  bearer token this node sends to the others when it forwards a request
                         [PIXELPORT_CLUSTER_TOKEN]
  --worker FILE          run FILE in worker threads connected to the store (repeatable)
  --threads N            worker threads per --worker module (default 1)
  --worker-restarts N    restart a crashed --worker thread up to N times, backing off 1 s, 2 s, 4 s …
                         (default 5; 0: never)
  --demo                 add demo images and run the animated demo producer
  --log                  log requests (pino, JSON to stdout)
  -h, --help             this text
`

/** Parse sizes such as 512M, 4G, 65536. */
export function parseSize (name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?$/.exec(text.trim())
  if (m === null) throw new Error(`--${name}: expected a size like 512M or 4G, got ${JSON.stringify(text)}`)
  const unit = (m[2] ?? '').toUpperCase()[0] ?? ''
  const factor = ({ '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 } as Record<string, number>)[unit]
  return Math.floor(Number(m[1]) * factor)
}

/** File modes as `chmod` spells them: 600, 0640, 0o660. */
function parseMode (text: string): number {
  const m = /^(?:0o?)?([0-7]{3})$/.exec(text.trim())
  if (m === null) throw new Error(`--shm-mode: expected 600, 640 or 660, got ${JSON.stringify(text)}`)
  return parseInt(m[1], 8)
}

function parseCount (name: string, text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a whole number, got ${JSON.stringify(text)}`)
  return n
}

const SERVE_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  capacity: { type: 'string' },
  'block-size': { type: 'string' },
  'max-images': { type: 'string' },
  'max-image-bytes': { type: 'string' },
  'snapshot-bytes': { type: 'string' },
  evict: { type: 'string' },
  shm: { type: 'boolean' },
  'shm-mode': { type: 'string' },
  'shm-prefix': { type: 'string' },
  recover: { type: 'boolean' },
  keep: { type: 'boolean' },
  persist: { type: 'string' },
  token: { type: 'string', multiple: true },
  'token-file': { type: 'string' },
  insecure: { type: 'boolean' },
  cors: { type: 'string', multiple: true },
  'allowed-host': { type: 'string', multiple: true },
  'max-connections-per-client': { type: 'string' },
  'max-event-loop-delay': { type: 'string' },
  'staging-budget': { type: 'string' },
  'upload-idle-timeout': { type: 'string' },
  'upload-deadline': { type: 'string' },
  cluster: { type: 'string' },
  advertise: { type: 'string' },
  'node-id': { type: 'string' },
  'cluster-token': { type: 'string' },
  worker: { type: 'string', multiple: true },
  threads: { type: 'string' },
  'worker-restarts': { type: 'string' },
  'max-connections-per-token': { type: 'string' },
  demo: { type: 'boolean' },
  log: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies NonNullable<ParseArgsConfig['options']>

export async function serve (argv: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: SERVE_OPTIONS, strict: true })
  } catch (err) {
    throw usage(parseArgsMessage(err as Error, SERVE_OPTIONS), 'serve')
  }
  const { values } = parsed
  if (values.help === true) {
    process.stdout.write(SERVE_HELP)
    return
  }
  const options: ServerOptions = {
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    port: parseCount('port', values.port ?? process.env.PORT ?? '8080'),
    logger: values.log === true,
  }
  if (values.capacity !== undefined) options.capacity = parseSize('capacity', values.capacity)
  if (values['block-size'] !== undefined) options.blockSize = parseSize('block-size', values['block-size'])
  if (values['max-images'] !== undefined) options.maxImages = parseCount('max-images', values['max-images'])
  if (values['max-image-bytes'] !== undefined) options.maxImageBytes = parseSize('max-image-bytes', values['max-image-bytes'])
  if (values['snapshot-bytes'] !== undefined) options.snapshotBytes = parseSize('snapshot-bytes', values['snapshot-bytes'])
  const evict = values.evict ?? process.env.PIXELPORT_EVICT
  if (evict !== undefined && evict !== '') options.evict = evict as ServerOptions['evict']
  const tokens = [
    ...parseTokenSpecs(process.env.PIXELPORT_TOKENS ?? '', 'PIXELPORT_TOKENS'),
    ...(values.token ?? []).flatMap((spec) => parseTokenSpecs(spec, '--token')),
  ]
  const tokenFile = values['token-file'] ?? process.env.PIXELPORT_TOKEN_FILE
  if (tokenFile !== undefined && tokenFile !== '') tokens.push(...parseTokenFile(readFileSync(tokenFile, 'utf8'), tokenFile))
  if (tokens.length > 0) options.tokens = tokens
  if (values.insecure === true) options.insecure = true
  const cors = values.cors ?? (process.env.PIXELPORT_CORS ?? '').split(',').filter((c) => c !== '')
  if (cors.length > 0) options.corsOrigins = cors
  const allowedHosts = values['allowed-host'] ?? (process.env.PIXELPORT_ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '')
  if (allowedHosts.length > 0) options.allowedHosts = allowedHosts
  if (values['max-connections-per-client'] !== undefined) options.maxConnectionsPerClient = parseCount('max-connections-per-client', values['max-connections-per-client'])
  if (values['max-connections-per-token'] !== undefined) options.maxConnectionsPerToken = parseCount('max-connections-per-token', values['max-connections-per-token'])
  if (values['max-event-loop-delay'] !== undefined) options.maxEventLoopDelayMs = parseCount('max-event-loop-delay', values['max-event-loop-delay'])
  {
    const budget = values['staging-budget'] ?? process.env.PIXELPORT_STAGING_BUDGET
    const idle = values['upload-idle-timeout'] ?? process.env.PIXELPORT_UPLOAD_IDLE_TIMEOUT
    const deadline = values['upload-deadline'] ?? process.env.PIXELPORT_UPLOAD_DEADLINE
    if (budget !== undefined && budget !== '') options.stagingBudgetBytes = parseSize('staging-budget', budget)
    if (idle !== undefined && idle !== '') options.uploadIdleTimeoutMs = parseCount('upload-idle-timeout', idle)
    if (deadline !== undefined && deadline !== '') options.uploadDeadlineMs = parseCount('upload-deadline', deadline)
  }
  const clusterRedis = values.cluster ?? process.env.PIXELPORT_CLUSTER
  if (clusterRedis !== undefined && clusterRedis !== '') {
    options.cluster = { redis: clusterRedis }
    const advertise = values.advertise ?? process.env.PIXELPORT_ADVERTISE
    const nodeId = values['node-id'] ?? process.env.PIXELPORT_NODE_ID
    const clusterToken = values['cluster-token'] ?? process.env.PIXELPORT_CLUSTER_TOKEN
    if (advertise !== undefined && advertise !== '') options.cluster.advertise = advertise
    if (nodeId !== undefined && nodeId !== '') options.cluster.nodeId = nodeId
    if (clusterToken !== undefined && clusterToken !== '') options.cluster.token = clusterToken
  } else if (values.advertise !== undefined || values['node-id'] !== undefined || values['cluster-token'] !== undefined) {
    throw new Error('--advertise, --node-id and --cluster-token need --cluster')
  }
  const threads = values.threads === undefined ? 1 : parseCount('threads', values.threads)
  if (values.shm === true || process.env.PIXELPORT_SHM === '1' || values['shm-mode'] !== undefined || values['shm-prefix'] !== undefined) {
    options.shm = { mode: parseMode(values['shm-mode'] ?? '600') }
    if (values['shm-prefix'] !== undefined) options.shm.prefix = values['shm-prefix']
    if (values.recover === true) options.shm.recover = true
  }
  if ((values.recover === true || values.keep === true) && options.shm === undefined) throw new Error('--recover and --keep need --shm')
  if (values.persist !== undefined) options.persist = values.persist

  // Loaded here, not at the top: the client commands should not pay for fastify and sharp on every run.
  const { createServer } = await import('../server/server.js')
  const { addDemoImages } = await import('../examples/demo/demo-images.js')
  const { isLoopback } = await import('../server/options.js')
  const { DEFAULT_WORKER_RESTARTS, runWorkerModules } = await import('./workers.js')
  if ((values.token ?? []).length > 0 && !isLoopback(options.host!)) {
    // Other users on this host see every process's arguments (ps, /proc/PID/cmdline).
    process.stderr.write('pixelport: warning: --token puts secrets on the command line, where any user of this host can read them (ps); use --token-file or PIXELPORT_TOKENS\n')
  }
  if (values['cluster-token'] !== undefined) {
    process.stderr.write('pixelport: warning: --cluster-token puts a secret on the command line, where any user of this host can read it (ps); use PIXELPORT_CLUSTER_TOKEN\n')
  }
  const server = await createServer(options)
  const url = await server.listen()
  if (options.shm !== undefined) {
    // Asked for and not there is worth a line on stderr; the server runs on in-process memory.
    if (server.shm.enabled) process.stdout.write(`shared memory: table ${server.shm.table} (mode ${server.shm.mode!.toString(8)})\n`)
    else process.stderr.write(`pixelport: warning: ${server.shm.reason}\n`)
  }
  for (const n of server.recovery.notes) (n.level === 'info' ? process.stdout : process.stderr).write(`pixelport: ${n.level === 'info' ? '' : n.level + ': '}${n.message}\n`)
  if (values.demo === true) {
    addDemoImages(server.store)
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    server.spawnWorker(new URL(`../examples/demo/pattern-worker${ext}`, import.meta.url))
  }
  // A worker that throws is logged by the server with its module name; the server keeps serving.
  const workerRestarts = values['worker-restarts'] === undefined ? DEFAULT_WORKER_RESTARTS : parseCount('worker-restarts', values['worker-restarts'])
  const workerModules = runWorkerModules(server, values.worker ?? [], threads, workerRestarts)
  if (server.cluster !== null) {
    const c = server.cluster
    if (c.hasJoined) process.stdout.write(`cluster: node ${c.nodeId} joined as ${c.url}\n`)
    else process.stderr.write(`pixelport: warning: cluster: Redis (${new URL(options.cluster!.redis).host}) not reachable yet; serving local images, joining when it answers\n`)
  }
  process.stdout.write(`pixelport listening on ${url}\n`)
  if (values.demo === true) process.stdout.write(`  try: curl ${url}/images   and   curl -o frame.raw ${url}/images/demo%2Fpattern/data\n`)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    workerModules.stop()
    process.stdout.write(`${signal}: shutting down\n`)
    // Say what shutdown cuts short: uploads still receiving their body are aborted (PXP_ERR_CLOSED).
    server.uploads.on('aborted', (u, err) => {
      process.stdout.write(`${signal}: aborted upload ${u.what} from ${u.client} (${u.received} of ${u.bytes} bytes received): ${err.code}\n`)
    })
    const force = setTimeout(() => process.exit(1), 10_000)
    force.unref()
    server.close({ keep: values.keep === true }).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  // The terminal went away (ssh dropped, window closed): shut down as cleanly as on SIGTERM.
  process.on('SIGHUP', () => stop('SIGHUP'))
  stopWithParent(() => stop('parent exited'))
}

/**
 * Run as an npm script (`npm start`), the server is a grandchild of npm: a SIGTERM that ends npm before it
 * forwards the signal (or a SIGKILL of npm) would leave the server running, re-parented, holding its
 * port. So under npm, a changed parent pid ends the server. Only under npm: `pixelport serve &` from a
 * shell that then exits (nohup) must keep running.
 */
function stopWithParent (stop: () => void, intervalMs = 500): void {
  if (process.env.npm_lifecycle_event === undefined) return
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer)
      stop()
    }
  }, intervalMs)
  timer.unref()
}
