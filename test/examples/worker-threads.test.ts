/**
 * examples/worker-threads/ is the README's worker-thread example ("Worker threads", the three blocks marked
 * as run here), kept as files: they must equal README.md's blocks, and `node main.js` must run as written.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { repoPath } from '../helpers/paths.js'

const MARKER = '<!-- runs in test/examples/worker-threads.test.ts -->'

/** The js blocks of README.md under this test's marker, by the file name their first line gives. */
function readmeBlocks (): Map<string, string> {
  const readme = readFileSync(repoPath('README.md'), 'utf8')
  const blocks = new Map<string, string>()
  for (let at = readme.indexOf(MARKER); at >= 0; at = readme.indexOf(MARKER, at + 1)) {
    const code = /^```js\n([\s\S]*?)```/.exec(readme.slice(at + MARKER.length + 1))![1]
    blocks.set(/^\/\/ (\S+\.js)/.exec(code)![1], code)
  }
  return blocks
}

t.test('the files are the README\'s blocks', async (t) => {
  const blocks = readmeBlocks()
  t.same([...blocks.keys()].sort(), ['consumer.js', 'main.js', 'producer.js'])
  for (const [name, code] of blocks) t.equal(readFileSync(repoPath('examples/worker-threads', name), 'utf8'), code, `${name} as in README.md`)
})

t.test('node main.js runs: the consumer sees 10 generations the producer published, then the server closes', async (t) => {
  // `pixelport` resolves to this package (a package may import itself by name): its build in dist/.
  const child = spawn(process.execPath, ['main.js'], { cwd: repoPath('examples/worker-threads'), env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(code, 0, stderr)
  t.equal(stderr, '', 'nothing on stderr')
  const lines = stdout.trim().split('\n')
  t.equal(lines.length, 10, stdout)
  const generations = lines.map((l) => Number(/^generation (\d+): sum \d+$/.exec(l)?.[1]))
  t.ok(generations.every((g, i) => Number.isInteger(g) && (i === 0 || g > generations[i - 1])), `increasing generations: ${generations.join(' ')}`)
})
