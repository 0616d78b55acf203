/**
 * The CLI's manners (issue 16): help and version, global options before the command, "did you mean",
 * `-` for stdin and stdout, `put --replace`, `info`, the `ls` columns, and messages that say what went
 * wrong. Commands run in this process (test/helpers/cli.ts runCli), several side by side.
 */
import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import sharp from 'sharp'
import { runCli, ROOT } from '../helpers/cli.js'
import { startServer } from '../helpers/server.js'

const WIDTH = 16
const HEIGHT = 8
const pixels = Buffer.alloc(WIDTH * HEIGHT * 3)
for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + 11) & 0xff
const other = Buffer.from(pixels.map((v) => 255 - v))
const png = async (data: Buffer, width = WIDTH, height = HEIGHT): Promise<Buffer> =>
  await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer()

t.test('help lists the commands first; --version; help COMMAND; global options; did you mean', async (t) => {
  const { url } = await startServer(t)
  const dead = 'http://127.0.0.1:9' // never asked: the global --url must win over PIXELPORT_URL
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
  const cases: Array<[string[], string?]> = [
    [['--help']], [[]], [['--version']], [['-V']], [['help', 'get']], [['help', 'serve']], [['--help', 'ls']], [['info', '--help']],
    [['--url', url, 'ls'], dead], [[`--url=${url}`, '--json', 'ls'], dead], [['--json', 'rm', 'x']], [['--bogus', 'ls']],
    [['sevre']], [['ls', '--jsn']], [['serve', '--prot', '1']], [['help', 'nope']], [['--url', url, 'serve']],
  ]
  const r = await Promise.all(cases.map(async ([args, env]) => await runCli(env ?? url, args)))
  const out = r.map((x) => x.stdout.toString())
  t.equal(r[0].code, 0)
  t.match(out[0], /^Usage: pixelport \[--url URL\] \[--token TOKEN\] \[--json\] COMMAND/)
  t.match(out[0], /Commands:\n {2}serve .*\n {2}put .*\n {2}get .*\n {2}info .*\n {2}ls .*\n {2}rm .*\n {2}watch .*\n {2}help /, 'the commands, serve among them, come first')
  t.notMatch(out[0], /--capacity/, 'not serve\'s options')
  t.equal(out[1], out[0], 'no arguments: the same help')
  t.equal(out[2], `pixelport ${version}\n`)
  t.equal(out[3], out[2])
  t.match(out[4], /^Usage: pixelport get ID -o FILE/)
  t.match(out[5], /^Usage: pixelport serve[\s\S]*--capacity SIZE/)
  t.match(out[6], /^Usage: pixelport ls/)
  t.match(out[7], /^Usage: pixelport info ID/)
  t.equal(r[8].code, 0, r[8].stderr)
  t.match(out[8], /^no images/, 'the global --url reached the server')
  t.same(JSON.parse(out[9]), { images: [] }, '--url=X and a global --json')
  const usage = [[10, /--json applies to ls and info/], [11, /unknown global option --bogus/], [12, /unknown command "sevre"; did you mean "serve"\?/],
    [13, /unknown option --jsn; did you mean "--json"\?/], [14, /unknown option --prot; did you mean "--port"\?/], [15, /no command "nope"/],
    [16, /--url: options of the client commands, not of serve/]] as const
  for (const [i, message] of usage) {
    t.equal(r[i].code, 2, `${cases[i][0].join(' ')}: usage error`)
    t.match(r[i].stderr, message)
  }
})

t.test('- for stdin and stdout, put --replace, info, and the ls columns', async (t) => {
  const { url } = await startServer(t)
  const dir = t.testdir({})
  const same = path.join(dir, 'same.png')
  const small = path.join(dir, 'small.png')
  await writeFile(same, await png(pixels))
  await writeFile(small, await png(pixels.subarray(0, 4 * 4 * 3), 4, 4))

  const put = await runCli(url, ['put', '-', '--id', 's/raw', '--shape', `${HEIGHT},${WIDTH},3`, '--typestr', '|u1'], { stdin: pixels })
  t.equal(put.code, 0, put.stderr)
  t.equal(put.stdout.toString(), 's/raw\n')
  const [ls, info, infoJson, raw, picture] = await Promise.all([
    runCli(url, ['ls']), runCli(url, ['info', 's/raw']), runCli(url, ['info', 's/raw', '--json']),
    runCli(url, ['get', 's/raw', '-o', '-', '--format', 'raw']), runCli(url, ['get', 's/raw', '-o', '-', '--format', 'png']),
  ])
  t.match(ls.stdout.toString(), /^ID\s+SHAPE\s+TYPE\s+MODE\s+SIZE\s+GENERATION\s+LAYOUT\n/)
  t.match(ls.stdout.toString(), /\ns\/raw\s+\(8, 16, 3\)\s+\|u1\s+RGB\s+16x8\s+0\s+block\n/, 'SHAPE as numpy (h, w, c), SIZE as WxH')
  t.match(info.stdout.toString(), /^id\s+s\/raw\nshape\s+\(8, 16, 3\)\nsize\s+16x8 \(width x height\), 3 channels\ntypestr\s+\|u1\nmode\s+RGB\n/)
  t.same((JSON.parse(infoJson.stdout.toString()) as { shape: number[] }).shape, [HEIGHT, WIDTH, 3])
  t.ok(raw.stdout.equals(pixels), 'raw bytes on stdout')
  t.ok((await sharp(picture.stdout).raw().toBuffer()).equals(pixels), 'a PNG on stdout')

  const replaced = await runCli(url, ['put', '-', '--id', 's/raw', '--replace'], { stdin: other })
  t.equal(replaced.code, 0, replaced.stderr)
  t.ok((await runCli(url, ['get', 's/raw', '-o', '-', '--format', 'raw'])).stdout.equals(other), 'raw bytes from stdin replaced the pixels')
  const fromPicture = await runCli(url, ['put', same, '--id', 's/raw', '--replace'])
  t.equal(fromPicture.code, 0, fromPicture.stderr)
  const [back, described, created, wrongSize, noId, notThere] = await Promise.all([
    runCli(url, ['get', 's/raw', '-o', '-', '--format', 'raw']), runCli(url, ['info', 's/raw', '--json']),
    runCli(url, ['put', same, '--id', 's/new', '--replace']), runCli(url, ['put', small, '--id', 's/raw', '--replace']),
    runCli(url, ['put', same, '--replace']), runCli(url, ['put', path.join(dir, 'frame.bin'), '--id', 's/none', '--replace']),
  ])
  t.ok(back.stdout.equals(pixels), 'a PNG replaced the pixels (decoded as the server decodes uploads)')
  t.equal((JSON.parse(described.stdout.toString()) as { generation: number }).generation, 2, 'two new generations of the same image')
  t.equal(created.code, 0, '--replace of an id that does not exist creates it')
  t.equal(created.stdout.toString(), 's/new\n')
  t.equal(wrongSize.code, 2)
  t.match(wrongSize.stderr, /decodes to shape \(4, 4, 3\).*--replace keeps an image's shape/)
  t.equal(noId.code, 2)
  t.match(noId.stderr, /--replace needs the --id/)
  t.equal(notThere.code, 2, 'a file that is not there')
})

t.test('get: unknown format, missing folder, stdout without a format are usage errors', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'g', width: 4, height: 4, mode: 'L' })
  const dir = t.testdir({})
  const cases = [
    [['get', 'g', '-o', path.join(dir, 'x.gif')], /unknown format "\.gif": name the file .*\.raw\/\.bin/],
    [['get', 'g', '-o', path.join(dir, 'noext')], /unknown format "noext"/],
    [['get', 'g', '-o', path.join(dir, 'missing', 'x.png')], /no such folder ".*missing" for/],
    [['get', 'g', '-o', '-'], /-o - writes to stdout: say which format with --format/],
    [['get', 'g', '-o', '-', '--format', 'gif'], /--format: expected png, jpeg, webp, tiff or raw/],
    [['put', '-', '--id', 'x'], /put - reads stdin: give --format/],
    [['put', '-', '--id', 'x', '--shape', '10,20', '--typestr', '|u1'], /stdin gave 0 bytes, the image needs exactly 200/],
  ] as const
  const results = await Promise.all(cases.map(async ([args]) => await runCli(url, [...args], { stdin: Buffer.alloc(0) })))
  results.forEach((r, i) => {
    t.equal(r.code, 2, cases[i][0].join(' '))
    t.match(r.stderr, cases[i][1])
  })
  await t.rejects(readFile(path.join(dir, 'x.gif')), { code: 'ENOENT' }, 'nothing written')
  t.same(server.store.list().map((d) => d.id), ['g'], 'nothing stored')
  const bin = path.join(dir, 'g.bin')
  const ok = await runCli(url, ['get', 'g', '-o', bin])
  t.equal(ok.code, 0, ok.stderr)
  t.equal((await readFile(bin)).byteLength, 16, '.bin: the raw bytes')
})

t.test('a missing token and a refused one get different advice; so does a forbidden request', async (t) => {
  const admin = 'admin-token-0123456789'
  const reader = 'read-token-0123456789'
  const { url } = await startServer(t, { tokens: [{ token: admin, scopes: ['read', 'write', 'admin'] }, { token: reader, scopes: ['read'] }] })
  const [none, wrongFlag, wrongEnv, forbidden, watchWrong, ok] = await Promise.all([
    runCli(url, ['ls']),
    runCli(url, ['--token', 'not-a-token-of-this-server', 'ls']),
    runCli(url, ['ls'], { env: { PIXELPORT_TOKEN: 'not-a-token-of-this-server' } }),
    runCli(url, ['put', '-', '--id', 'f', '--shape', '2,2', '--typestr', '|u1', '--token', reader], { stdin: Buffer.alloc(4) }),
    runCli(url, ['watch', '--token', 'not-a-token-of-this-server']),
    runCli(url, ['ls', '--token', admin]),
  ])
  t.equal(none.code, 1)
  t.match(none.stderr, /PXP_ERR_UNAUTHORIZED[\s\S]*this server requires a token: pass one with --token or PIXELPORT_TOKEN/)
  for (const [r, source] of [[wrongFlag, '--token'], [wrongEnv, 'PIXELPORT_TOKEN'], [watchWrong, '--token']] as const) {
    t.equal(r.code, 1)
    t.match(r.stderr, new RegExp(`the server does not accept the token from ${source}`))
    t.notMatch(r.stderr, /pass one with --token/, 'a wrong token is not told to pass a token')
  }
  t.equal(forbidden.code, 1)
  t.match(forbidden.stderr, /PXP_ERR_FORBIDDEN[\s\S]*valid but not allowed/)
  t.equal(ok.code, 0, ok.stderr)
})

t.test('an image over --capacity names the capacity, not --max-image-bytes', async (t) => {
  const { url } = await startServer(t, { capacity: 1 << 20, blockSize: 1 << 20 })
  const half = Buffer.alloc(600 * 1000)
  const first = await runCli(url, ['put', '-', '--shape', '600,1000', '--typestr', '|u1'], { stdin: half })
  t.equal(first.code, 0, first.stderr)
  const [full, tooLarge] = await Promise.all([
    runCli(url, ['put', '-', '--shape', '600,1000', '--typestr', '|u1'], { stdin: half }),
    runCli(url, ['put', '-', '--shape', '1000,2000', '--typestr', '|u1'], { stdin: Buffer.alloc(2000 * 1000) }),
  ])
  t.equal(full.code, 1)
  t.match(full.stderr, /PXP_ERR_CAPACITY[\s\S]*hint: the server's memory \(its --capacity\) is full/)
  t.notMatch(full.stderr, /--max-image-bytes/)
  t.equal(tooLarge.code, 1)
  t.match(tooLarge.stderr, /PXP_ERR_TOO_LARGE[\s\S]*--capacity/, 'the per-image limit may be the capacity: the hint says so')
})

t.test('watch ID on a missing id says it waits for it, then watches it', async (t) => {
  const { url, server } = await startServer(t)
  let created: Promise<void> | undefined
  const result = await runCli(url, ['watch', 'later/one', '--count', '1'], {
    onStderr: (stderr) => {
      if (created === undefined && stderr.includes('waiting for it to be created')) {
        created = (async () => {
          server.store.create({ id: 'later/one', width: 2, height: 2, mode: 'L' })
          await server.store.write('later/one', new Uint8Array(4).fill(7))
        })()
      }
    },
  })
  await created
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /later\/one does not exist yet: waiting for it to be created/)
  t.match(result.stdout.toString(), /^later\/one {2}generation \d+/, 'then its events')
})
