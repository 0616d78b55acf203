/**
 * `pixelport serve`: run the server its flags (and their environment variables) describe until a signal.
 * The flags themselves come from the options table, through ./serve-options.ts.
 */
import { parseServeArgs, SERVE_HELP } from './serve-options.js'

export { SERVE_HELP }

export async function serve (argv: string[]): Promise<void> {
  const run = parseServeArgs(argv)
  if (run === 'help') {
    process.stdout.write(SERVE_HELP)
    return
  }
  const { options } = run

  // Loaded here, not at the top: the client commands should not pay for fastify and sharp on every run.
  const { createServer } = await import('../server/server.js')
  const { addDemoImages } = await import('../examples/demo/demo-images.js')
  const { isLoopback } = await import('../server/options.js')
  const { runWorkerModules } = await import('./workers.js')
  if (run.tokenFlags && !isLoopback(options.host ?? '127.0.0.1')) {
    // Other users on this host see every process's arguments (ps, /proc/PID/cmdline).
    process.stderr.write('pixelport: warning: --token puts secrets on the command line, where any user of this host can read them (ps); use --token-file or PIXELPORT_TOKENS\n')
  }
  if (run.clusterTokenFlag) {
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
  if (run.demo) {
    addDemoImages(server.store)
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    server.spawnWorker(new URL(`../examples/demo/pattern-worker${ext}`, import.meta.url))
  }
  // A worker that throws is logged by the server with its module name; the server keeps serving.
  const workerModules = runWorkerModules(server, run.workers, run.threads, run.workerRestarts)
  if (server.cluster !== null) {
    const c = server.cluster
    if (c.hasJoined) process.stdout.write(`cluster: node ${c.nodeId} joined as ${c.url}\n`)
    else process.stderr.write(`pixelport: warning: cluster: Redis (${new URL(options.cluster!.redis).host}) not reachable yet; serving local images, joining when it answers\n`)
  }
  process.stdout.write(`pixelport listening on ${url}\n`)
  if (run.demo) process.stdout.write(`  try: curl ${url}/images   and   curl -o frame.raw ${url}/images/demo%2Fpattern/data\n`)

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
    server.close({ keep: run.keep }).then(() => process.exit(0), () => process.exit(1))
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
