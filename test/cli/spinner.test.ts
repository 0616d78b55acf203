/**
 * The spinner shown while the server encodes a large picture: elapsed time on a TTY after the delay, its
 * line erased when the wait ends, nothing at all on a pipe.
 */
import t from 'tap'
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { startSpinner } from '../../server/cli/spinner.js'

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
