/**
 * "Did you mean": the closest command or flag by edit distance, and nothing when no candidate is close.
 */
import t from 'tap'
import { closest, didYouMean, editDistance, parseArgsMessage } from '../../cli/suggest.js'
import { parseArgs } from 'node:util'

t.test('edit distance counts insertions, deletions, substitutions and swaps', async (t) => {
  t.equal(editDistance('serve', 'serve'), 0)
  t.equal(editDistance('sevre', 'serve'), 1, 'a swap is one edit')
  t.equal(editDistance('ls', 'lss'), 1)
  t.equal(editDistance('get', 'put'), 2)
  t.equal(editDistance('', 'abc'), 3)
})

t.test('closest: a likely typo, or nothing', async (t) => {
  const commands = ['serve', 'put', 'get', 'info', 'ls', 'rm', 'watch', 'help']
  t.equal(closest('sevre', commands), 'serve')
  t.equal(closest('wacth', commands), 'watch')
  t.equal(closest('inf', commands), 'info')
  t.equal(closest('xyzzy', commands), undefined)
  t.equal(closest('--prot', ['--port', '--host']), '--port')
  t.equal(didYouMean('lst', ['ls']), '; did you mean "ls"?')
  t.equal(didYouMean('completely-else', ['ls']), '')
})

t.test('parseArgs errors name the flag and the closest known one', async (t) => {
  const options = { output: { type: 'string' as const }, format: { type: 'string' as const } }
  const error = t.throws(() => parseArgs({ args: ['--fromat=png'], options, strict: true })) as Error
  t.equal(parseArgsMessage(error, options), 'unknown option --fromat; did you mean "--format"?')
})
