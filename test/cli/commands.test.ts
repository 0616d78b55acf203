/**
 * The client commands of the `pixelport` CLI against a real in-process server: run in this process (the
 * program on buffers), and a few as real child processes of the built CLI for their exit codes.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import sharp from 'sharp'
import { runCli, spawnCli } from '../helpers/cli.js'
import { startServer } from '../helpers/server.js'

interface Result { code: number | null, stdout: string, stderr: string }

/** Run a command to completion; `onStderr` sees stderr as it arrives. */
async function run (url: string, args: string[], onStderr?: (text: string) => void): Promise<Result> {
  const r = await runCli(url, args, onStderr === undefined ? {} : { onStderr })
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }
}

/**
 * A loopback port where no server answers: a listener of ours that resets every connection at once. Held
 * for the whole test, so no other process can take the port meanwhile (a port closed again would be).
 */
async function deadPort (t: Test): Promise<number> {
  const server = net.createServer((socket) => socket.resetAndDestroy()).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as net.AddressInfo).port
}

const WIDTH = 16
const HEIGHT = 8
const pixels = Buffer.alloc(WIDTH * HEIGHT * 3)
for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + 11) & 0xff

t.test('put, ls, get, rm through the CLI', async (t) => {
  const { url } = await startServer(t)
  const dir = t.testdir({})
  const png = path.join(dir, 'in.png')
  await writeFile(png, await sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).png().toBuffer())

  const put = await run(url, ['put', png, '--id', 'cli/pic'])
  t.equal(put.code, 0, put.stderr)
  t.equal(put.stdout, 'cli/pic\n', 'prints the new id')

  const ls = await run(url, ['ls'])
  t.equal(ls.code, 0)
  t.match(ls.stdout, /^ID\s+SHAPE\s+TYPE\s+MODE\s+SIZE\s+GENERATION\s+LAYOUT\n/)
  t.match(ls.stdout, /cli\/pic\s+\(8, 16, 3\)\s+\|u1\s+RGB\s+16x8\s+\d+\s+block/)
  const json = JSON.parse((await run(url, ['ls', '--json'])).stdout) as { images: Array<{ id: string, width: number }> }
  t.same(json.images.map((d) => [d.id, d.width]), [['cli/pic', WIDTH]])

  const outPng = path.join(dir, 'out.png')
  const get = await run(url, ['get', 'cli/pic', '-o', outPng])
  t.equal(get.code, 0, get.stderr)
  t.equal(get.stderr, '', 'no progress bar when stderr is not a TTY')
  const decoded = await sharp(await readFile(outPng)).raw().toBuffer({ resolveWithObject: true })
  t.same([decoded.info.width, decoded.info.height, decoded.info.channels], [WIDTH, HEIGHT, 3])
  t.ok(decoded.data.equals(pixels), 'PNG round-trips the pixels')

  const outRaw = path.join(dir, 'out.bin')
  t.equal((await run(url, ['get', 'cli/pic', '--output', outRaw])).code, 0)
  t.ok((await readFile(outRaw)).equals(pixels), '.bin gets the raw bytes')

  // Raw uploads, both ways of giving the layout
  const raw = path.join(dir, 'frame.bin')
  await writeFile(raw, pixels)
  const byShape = await run(url, ['put', raw, '--id', 'cli/raw', '--shape', `${HEIGHT},${WIDTH},3`, '--typestr', '|u1'])
  t.equal(byShape.code, 0, byShape.stderr)
  const byMode = await run(url, ['put', raw, '--mode', 'RGB', '--width', String(WIDTH), '--height', String(HEIGHT)])
  t.equal(byMode.code, 0, byMode.stderr)
  t.match(byMode.stdout, /^\S+\n$/, 'the server picked an id')
  const back = path.join(dir, 'back.raw')
  t.equal((await run(url, ['get', byMode.stdout.trim(), '-o', back])).code, 0)
  t.ok((await readFile(back)).equals(pixels))

  const rm = await run(url, ['rm', 'cli/pic', 'cli/raw'])
  t.equal(rm.code, 0, rm.stderr)
  t.notMatch((await run(url, ['ls'])).stdout, /cli\//, 'gone from ls')
})

t.test('errors: refused 1, usage 2, unreachable 3', async (t) => {
  const { url } = await startServer(t)
  const dir = t.testdir({ 'data.bin': 'abcdef', 'x.png': 'not a png' })

  const missing = await run(url, ['get', 'no/such', '-o', path.join(dir, 'o.png')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /PXP_ERR_NOT_FOUND/)
  t.match(missing.stderr, /pixelport ls/, 'says what to do')
  await t.rejects(readFile(path.join(dir, 'o.png')), { code: 'ENOENT' }, 'a refused download leaves no file')
  t.match((await run(url, ['rm', 'no/such'])).code, 1)

  const badPicture = await run(url, ['put', path.join(dir, 'x.png')])
  t.equal(badPicture.code, 1)
  t.match(badPicture.stderr, /PXP_ERR_BAD_IMAGE/)
  const wrongSize = await run(url, ['put', path.join(dir, 'data.bin'), '--shape', '2,2', '--typestr', '|u1'])
  t.equal(wrongSize.code, 1)
  t.match(wrongSize.stderr, /PXP_ERR_BYTE_COUNT/)
  const put = await run(url, ['put', path.join(dir, 'data.bin'), '--shape', '2,3', '--typestr', '|u1', '--id', 'dup'])
  t.equal(put.code, 0, put.stderr)
  const dup = await run(url, ['put', path.join(dir, 'data.bin'), '--shape', '2,3', '--typestr', '|u1', '--id', 'dup'])
  t.equal(dup.code, 1)
  t.match(dup.stderr, /PXP_ERR_ALREADY_EXISTS/)

  // Usage errors and help never reach the server: run them side by side to keep the test short.
  const usageErrors = [
    ['ls', '--bogus'],
    ['get', 'dup'],
    ['get', '-o', 'x.png'],
    ['rm'],
    ['put'],
    ['put', path.join(dir, 'data.bin')],
    ['put', path.join(dir, 'x.png'), '--mode', 'L'],
    ['put', path.join(dir, 'nothing.png')],
    ['watch', '--count', 'many'],
    ['ls', '--url', 'ftp://x'],
    ['nonsense'],
  ]
  const commands = ['put', 'get', 'info', 'ls', 'rm', 'watch']
  const [errors, helps] = await Promise.all([
    Promise.all(usageErrors.map(async (args) => await run(url, args))),
    Promise.all(commands.map(async (command) => await run(url, [command, '--help']))),
  ])
  errors.forEach((r, i) => {
    t.equal(r.code, 2, `${usageErrors[i].join(' ')} is a usage error: ${r.stderr}`)
    t.match(r.stderr, /pixelport/)
  })
  helps.forEach((help, i) => {
    t.equal(help.code, 0)
    t.match(help.stdout, new RegExp(`^Usage: pixelport ${commands[i]}`))
  })

  const dead = `http://127.0.0.1:${await deadPort(t)}`
  const unreachable = [['ls'], ['rm', 'x'], ['watch']]
  const results = await Promise.all(unreachable.map(async (args) => await run(dead, args)))
  for (const [i, r] of results.entries()) {
    const args = unreachable[i]
    t.equal(r.code, 3, `${args[0]} against a port where no server answers`)
    t.match(r.stderr, /cannot reach the server/)
    t.match(r.stderr, /npm start/)
  }
})

t.test('the executable exits with the code: 0 ok, 1 refused, 2 usage, 3 unreachable', async (t) => {
  const { url } = await startServer(t)
  const dead = `http://127.0.0.1:${await deadPort(t)}`
  const [ok, refused, usage, unreachable] = await Promise.all([
    spawnCli(url, ['ls']), spawnCli(url, ['info', 'no/such']), spawnCli(url, ['ls', '--bogus']), spawnCli(dead, ['ls']),
  ])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout.toString(), /^no images/)
  t.equal(refused.code, 1)
  t.match(refused.stderr, /^pixelport info: PXP_ERR_NOT_FOUND[\s\S]*hint: run "pixelport ls"/)
  t.equal(usage.code, 2)
  t.match(usage.stderr, /unknown option --bogus/)
  t.equal(unreachable.code, 3)
  t.match(unreachable.stderr, /cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(ECONNRESET\)/)
})

t.test('watch --count prints generation and rate', async (t) => {
  const { url, server } = await startServer(t)
  server.store.create({ id: 'cam/a', width: 4, height: 4, mode: 'L' })
  server.store.create({ id: 'cam/b', width: 4, height: 4, mode: 'L' })
  let writing = true
  let written = 0
  // Keep writing until the watcher has seen its events and quit: 'latest' may merge writes, so no fixed number.
  const writer = async (): Promise<void> => {
    while (writing) {
      await server.store.write('cam/a', new Uint8Array(16).fill(++written))
      await server.store.write('cam/b', new Uint8Array(16).fill(written))
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  let started: Promise<void> | undefined
  const result = await run(url, ['watch', 'cam/a', '--count', '3'], (stderr) => {
    if (started === undefined && stderr.includes('watching')) started = writer()
  })
  writing = false
  await started
  t.equal(result.code, 0, result.stderr)
  t.ok(written >= 1)
  const lines = result.stdout.trim().split('\n')
  t.ok(lines.length >= 1)
  for (const line of lines) t.match(line, /^cam\/a {2}generation \d+ {2}fps \d+\.\d {2}skipped \d+$/, 'only the watched id')
  const total = lines.map((l) => Number(/generation (\d+)/.exec(l)![1]))
  t.ok(total.at(-1)! >= 3, 'three generations seen')
})
