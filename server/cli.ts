#!/usr/bin/env node
/**
 * `pixelport` command line. `pixelport serve` starts the server; put/get/ls/rm/watch (in ./cli/) talk to one.
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import type { ServerOptions } from './options.js'
import { CLIENT_COMMANDS, CLIENT_HELP, runClientCommand } from './cli/run.js'

const HELP = `Usage: pixelport serve [options]

Options (environment variable in brackets):
  --host HOST            interface to listen on (default 127.0.0.1) [HOST]
  --port N               port, 0 for any free one (default 8080) [PORT]
  --capacity SIZE        total image memory, e.g. 512M, 4G (default: 1/4 of RAM, at most 16G)
  --block-size SIZE      shared block size (default 64M)
  --max-images N         most images and views at once (default 16384)
  --max-image-bytes SIZE largest single image (default 1G)
  --snapshot-bytes SIZE  memory for copies served to remote readers (default 512M)
  --shm                  blocks and image table in POSIX shared memory (/dev/shm), so other processes
                         on this host map them (pixelport/attach, numpy); falls back to in-process
                         memory with a warning where unavailable [PIXELPORT_SHM=1]
  --shm-mode MODE        file mode of the segments: 600 (default), 640 or 660 to share with the group
  --shm-prefix NAME      first part of every segment name (default pixelport)
  --worker FILE          run FILE in worker threads connected to the store (repeatable)
  --threads N            worker threads per --worker module (default 1)
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

async function serve (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      capacity: { type: 'string' },
      'block-size': { type: 'string' },
      'max-images': { type: 'string' },
      'max-image-bytes': { type: 'string' },
      'snapshot-bytes': { type: 'string' },
      shm: { type: 'boolean' },
      'shm-mode': { type: 'string' },
      'shm-prefix': { type: 'string' },
      worker: { type: 'string', multiple: true },
      threads: { type: 'string' },
      demo: { type: 'boolean' },
      log: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) {
    process.stdout.write(HELP)
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
  const threads = values.threads === undefined ? 1 : parseCount('threads', values.threads)
  if (values.shm === true || process.env.PIXELPORT_SHM === '1' || values['shm-mode'] !== undefined || values['shm-prefix'] !== undefined) {
    options.shm = { mode: parseMode(values['shm-mode'] ?? '600') }
    if (values['shm-prefix'] !== undefined) options.shm.prefix = values['shm-prefix']
  }

  // Loaded here, not at the top: the client commands should not pay for fastify and sharp on every run.
  const { createServer } = await import('./server.js')
  const { addDemoImages } = await import('./demo/demo-images.js')
  const server = await createServer(options)
  const url = await server.listen()
  if (options.shm !== undefined) {
    // Asked for and not there is worth a line on stderr; the server runs on in-process memory.
    if (server.shm.enabled) process.stdout.write(`shared memory: table ${server.shm.table} (mode ${server.shm.mode!.toString(8)})\n`)
    else process.stderr.write(`pixelport: warning: ${server.shm.reason}\n`)
  }
  if (values.demo === true) {
    addDemoImages(server.store)
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    server.spawnWorker(new URL(`./demo/pattern-worker${ext}`, import.meta.url))
  }
  for (const file of values.worker ?? []) {
    const url = pathToFileURL(path.resolve(file))
    for (let i = 0; i < threads; i++) {
      const worker = server.spawnWorker(url, { workerData: { index: i, threads } })
      worker.on('error', (err) => process.stderr.write(`worker ${file}#${i} failed: ${err.stack ?? String(err)}\n`))
    }
  }
  process.stdout.write(`pixelport listening on ${url}\n`)
  if (values.demo === true) process.stdout.write(`  try: curl ${url}/images   and   curl -o frame.raw ${url}/images/demo%2Fpattern/data\n`)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    process.stdout.write(`${signal}: shutting down\n`)
    const force = setTimeout(() => process.exit(1), 10_000)
    force.unref()
    server.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return await serve(rest)
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(HELP + '\n' + CLIENT_HELP)
      return
    default:
      if (Object.hasOwn(CLIENT_COMMANDS, command)) {
        process.exitCode = await runClientCommand(command, rest)
        return
      }
      throw new Error(`unknown command ${JSON.stringify(command)}; try "pixelport --help"`)
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`pixelport: ${err.message}\n`)
  process.exit(2)
})
