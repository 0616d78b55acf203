/**
 * The "done when": a client in another language that knows only HTTP and numpy's array interface
 * creates, lists, reads (also a view, by strides and offset) and deletes images, byte-exact.
 */
import { execFile } from 'node:child_process'
import t from 'tap'
import { repoPath } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'

// Debian's interpreter, which has python3-numpy; `python3` on PATH may be another one without it.
const PYTHON = '/usr/bin/python3'
const SCRIPT = repoPath('test/interop/numpy_client.py')

interface Run { code: number, stdout: string, stderr: string }

function run (args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(PYTHON, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('a numpy client over plain HTTP gets byte-exact pixels', async (t) => {
  const numpy = await run(['-c', 'import numpy; print(numpy.__version__)'])
  t.equal(numpy.code, 0, `numpy importable in ${PYTHON} (CI installs python3-numpy): ${numpy.stderr.trim()}`)
  if (numpy.code !== 0) return

  const { url, server } = await startServer(t)
  const result = await run([SCRIPT, url])
  t.equal(result.code, 0, `exit code 0\n${result.stdout}${result.stderr}`)
  t.equal(result.stderr, '')
  const lines = result.stdout.trim().split('\n')
  t.notOk(lines.some((l) => l.startsWith('FAIL')), 'no failed check')
  for (const check of [
    'ok create RGB from JSON',
    'ok RGB read back byte-exact through __array_interface__',
    'ok raw uploads of 11 dtypes read back byte-exact',
    'ok line-based image read back byte-exact',
    'ok list has every image',
    'ok view read by strides + offset is byte-exact',
    'ok numpy reads the view in place, by its strides',
    'ok PUT through the view lands in the base',
    'ok deleted everything (views went with their bases)',
  ]) t.ok(lines.includes(check), check)
  t.match(lines.at(-1), /^ALL OK \d+ checks$/)
  t.equal(Number(lines.at(-1)!.split(' ')[2]), lines.length - 1, 'every check printed ok')
  // The client cleaned up after itself through the API.
  t.equal(server.store.size, 0)
  t.equal(server.store.stats().used, 0)
})

t.test('the numpy client fails loudly when the server is not there', async (t) => {
  const { url, server } = await startServer(t)
  await server.close()
  const result = await run([SCRIPT, url])
  t.not(result.code, 0)
  t.notMatch(result.stdout, /ALL OK/)
})
