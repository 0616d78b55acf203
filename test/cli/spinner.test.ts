/**
 * The spinner shown while the server encodes a large picture: elapsed time on a TTY after the delay, its
 * line erased when the wait ends, nothing at all on a pipe.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { startSpinner } from '../../cli/spinner.js'
import { CLI } from '../helpers/cli.js'

/** A stream that says it is a terminal, collecting what is drawn. */
function terminal (isTTY: boolean): PassThrough & { isTTY: boolean, text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY })
  let text = ''
  stream.on('data', (b: Buffer) => { text += b.toString() })
  return Object.assign(stream, { text: () => text })
}

t.test('on a TTY: label and elapsed seconds after the delay, erased at the end', async (t) => {
  // The spinner's timers are unref'd (a CLI waiting on a request is kept alive by the socket): hold the
  // loop open meanwhile.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const out = terminal(true)
  const stop = startSpinner('encoding big as png', { stream: out, delayMs: 20, intervalMs: 10 })
  await once(out, 'data')
  await once(out, 'data')
  stop()
  stop()
  await new Promise((resolve) => setImmediate(resolve))
  t.match(out.text(), /^\r[|/\\-] encoding big as png \d+\.\d s\x1b\[K\r[|/\\-] encoding big as png \d+\.\d s\x1b\[K/)
  t.ok(out.text().endsWith('\r\x1b[K'), 'the line is erased once, when it stops')
  const drawn = out.text().length
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(out.text().length, drawn, 'nothing drawn after stop')
})

t.test('a short wait draws nothing; neither does a pipe', async (t) => {
  const quick = terminal(true)
  startSpinner('quick', { stream: quick, delayMs: 1000 })()
  const pipe = terminal(false)
  const stop = startSpinner('piped', { stream: pipe, delayMs: 0, intervalMs: 1 })
  await new Promise((resolve) => setTimeout(resolve, 30))
  stop()
  t.equal(quick.text(), '')
  t.equal(pipe.text(), '')
})

const SCRIPT = '/usr/bin/script'

t.test('pixelport get on a terminal: a spinner while the server takes over a second', { skip: existsSync(SCRIPT) ? false : `${SCRIPT} (util-linux) gives the CLI a terminal` }, async (t) => {
  // A server that answers the picture only once the spinner is on screen: slow, as a 35-megapixel encode is.
  const held: http.ServerResponse[] = []
  const server = http.createServer((request, response) => {
    if (request.url === '/images/slow.png') held.push(response)
    else response.writeHead(404).end()
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const out = path.join(t.testdir({}), 'slow.png')
  // script(1) runs the CLI on a pseudo-terminal: its stderr is a TTY, and everything comes out of script's stdout.
  const child = spawn(SCRIPT, ['-qfec', `${process.execPath} ${CLI} get slow -o ${out} --url ${url}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let screen = ''
  const shown = new Promise<void>((resolve) => {
    child.stdout.on('data', (b: Buffer) => {
      screen += b.toString()
      if (/encoding slow as png \d+\.\d s/.test(screen)) resolve()
    })
  })
  const exited = once(child, 'exit')
  await shown
  t.equal(held.length, 1, 'still waiting for the server')
  held[0].writeHead(200, { 'content-type': 'image/png' }).end('picture bytes')
  const [code] = await exited as [number]
  t.equal(code, 0, screen)
  t.match(screen, /encoding slow as png 1\.\d s/, 'elapsed time, from one second on')
  t.match(screen, /\r\x1b\[K/, 'the spinner line is erased')
  t.equal(await readFile(out, 'utf8'), 'picture bytes')
})
