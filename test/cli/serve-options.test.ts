/**
 * `pixelport serve`'s flags come from the options table: every row is in --help and in the README, a flag and
 * its environment variable set the same option, and a few real runs show both reach the server.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseServeArgs, SERVE_HELP, SERVE_ROWS, type ServeRun } from '../../cli/serve-options.js'
import { flagRow } from '../../server/options-table.js'
import { serveCli } from '../helpers/cli.js'
import { repoPath } from '../helpers/paths.js'

const run = (argv: string[], env: Record<string, string> = {}): ServeRun => {
  const r = parseServeArgs(argv, env)
  if (r === 'help') throw new Error('help')
  return r
}

t.test('every row of the table is in --help and in the README, with its variable', async (t) => {
  const readme = readFileSync(repoPath('README.md'), 'utf8')
  t.ok(readme.includes('```\n$ pixelport serve --help\n' + SERVE_HELP + '```'), 'the README shows pixelport serve --help as it prints')
  for (const row of SERVE_ROWS) {
    t.match(SERVE_HELP, new RegExp(`\\n {2}--${row.flag}[ \\n]`), `--${row.flag} in --help`)
    if (row.env !== undefined) t.ok(SERVE_HELP.includes(`[${row.envHelp ?? row.env}`), `${row.env} in --help`)
  }
  t.equal(parseServeArgs(['--help'], {}), 'help')
})

t.test('a flag and its environment variable set the same option; the flag wins', async (t) => {
  const samples: Record<string, string> = {
    host: '127.0.0.2', port: '0', evict: 'lru', 'staging-budget': '300M', 'upload-idle-timeout': '1000',
    'upload-deadline': '2000', cors: 'https://a.example', 'allowed-host': 'pixelport.internal',
    'token-file': '', cluster: 'redis://127.0.0.1:1', advertise: 'http://10.0.0.5:8080', 'node-id': 'n1', 'cluster-token': 'secret',
  }
  for (const row of SERVE_ROWS) {
    if (row.env === undefined || row.option === undefined || row.option === 'tokens' || row.option === 'shm') continue
    const text = samples[row.flag!]
    t.ok(text !== undefined, `a sample for --${row.flag}`)
    const cluster = row.option.startsWith('cluster.') && row.flag !== 'cluster' ? ['--cluster', 'redis://127.0.0.1:1'] : []
    const byFlag = run([...cluster, `--${row.flag}`, text]).options
    const byEnv = run(cluster, { [row.env]: text }).options
    t.same(byEnv, byFlag, `--${row.flag} ${text} and ${row.env}=${text}`)
    t.notSame(run(cluster).options, byFlag, `--${row.flag} changes something`)
  }
  t.same(run(['--shm']).options.shm, run([], { PIXELPORT_SHM: '1' }).options.shm, '--shm and PIXELPORT_SHM=1')
  t.equal(run([], { PIXELPORT_SHM: '0' }).options.shm, undefined, 'PIXELPORT_SHM=0 is off')
  t.same(run(['--token', 'a:read'], {}).options.tokens, run([], { PIXELPORT_TOKENS: 'a:read' }).options.tokens, '--token and PIXELPORT_TOKENS')
  t.equal(run(['--evict', 'none'], { PIXELPORT_EVICT: 'lru' }).options.evict, 'none', 'the flag wins over the variable')
  t.equal(run([], { PIXELPORT_EVICT: '' }).options.evict, undefined, 'an empty variable is unset')
})

t.test('values are parsed by the row\'s parser, defaults come from the table', async (t) => {
  const r = run(['--capacity', '64M', '--block-size', '1M', '--max-images', '7', '--shm-mode', '640', '--threads', '3', '--log'])
  t.equal(r.options.capacity, 64 * 1024 * 1024)
  t.equal(r.options.blockSize, 1024 * 1024)
  t.equal(r.options.maxImages, 7)
  t.same(r.options.shm, { mode: 0o640 }, '--shm-mode implies --shm')
  t.equal(r.threads, 3)
  t.equal(r.options.logger, true)
  const plain = run([])
  t.same(plain.options, {}, 'no flags: createServer\'s own defaults')
  t.equal(plain.threads, flagRow('threads').default)
  t.equal(plain.workerRestarts, flagRow('worker-restarts').default)
  t.throws(() => run(['--capacity', 'lots']), /--capacity: expected a size like 512M or 4G/)
  t.throws(() => run(['--max-images', '1.5']), /--max-images: expected a whole number/)
  t.throws(() => run(['--node-id', 'x']), /need --cluster/)
  t.throws(() => run(['--keep']), /need --shm/)
  t.throws(() => run(['--capasity', '1G']), { exitCode: 2, message: /unknown option --capasity; did you mean "--capacity"/ })
})

t.test('real runs: a flag and an environment variable reach the server', async (t) => {
  const a = await serveCli(t, ['--max-images', '7', '--cors', 'https://a.example'])
  const b = await serveCli(t, ['--capacity', '64M'], { PIXELPORT_CORS: 'https://b.example', PIXELPORT_EVICT: 'lru' })
  const stats = async (url: string): Promise<any> => await (await fetch(`${url}/stats`)).json()
  t.equal((await stats(a.url)).maxImages, 7, '--max-images')
  t.equal((await stats(b.url)).capacity, 64 * 1024 * 1024, '--capacity')
  const origin = async (url: string, o: string): Promise<string | null> =>
    (await fetch(`${url}/images`, { headers: { origin: o } })).headers.get('access-control-allow-origin')
  t.equal(await origin(a.url, 'https://a.example'), 'https://a.example', '--cors')
  t.equal(await origin(b.url, 'https://b.example'), 'https://b.example', 'PIXELPORT_CORS')
  t.equal(await origin(b.url, 'https://a.example'), null, 'only the origin given')
})
