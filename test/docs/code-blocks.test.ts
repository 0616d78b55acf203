/**
 * Docs that run: every fenced code block of README.md and docs/*.md is either run here against a real
 * server, or marked as not runnable with a reason. The convention (README "Development"):
 *
 * - `<!-- not run: REASON -->` on the line before a fence: shown, never run (a diagram, pseudo-code, a
 *   fragment, a command that runs until stopped). The reason is required.
 * - `<!-- file: NAME -->` before a fence: written as NAME next to the document's other blocks (a worker
 *   module the block that runs imports or spawns); it must be named by a block that runs.
 * - `<!-- runs in test/….test.ts -->` (or `runs in Chromium in …`): run by that test, which must exist and
 *   read this document (the README's RemoteClient examples, one of them in a browser).
 * - Everything else runs, in document order, one document at a time in its own folder: `sh` with bash
 *   (`pixelport` on PATH is the built CLI), `js` as an ES module (`pixelport` resolves to this package's
 *   dist/), `python` with /usr/bin/python3 (`pixelport` from python/src), `json` is parsed.
 *   `127.0.0.1:8080` and `localhost:8080` become the test server; `port: 8080` becomes `port: 0`. A block
 *   passes when it exits 0 with nothing on stderr.
 *
 * python/README.md's blocks are run by python/tests/test_docs.py.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { addDemoImages } from '../../examples/demo/demo-images.js'
import { CLI, repoPath, ROOT } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'

const PYTHON = '/usr/bin/python3'
const RUNNERS = new Set(['sh', 'js', 'python', 'json'])
const BLOCK_TIMEOUT_MS = 60_000

export interface Block {
  file: string
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  code: string
  marker: { kind: 'not run', reason: string } | { kind: 'file', name: string } | { kind: 'runs in', test: string } | null
}

/** Every fenced block of a markdown text, with the marker comment on the line before it, if any. */
export function codeBlocks (file: string, text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(```+)(.*)$/.exec(lines[i])
    if (open === null) continue
    const end = lines.findIndex((l, j) => j > i && l.startsWith(open[1]) && l.trim() === open[1])
    if (end === -1) throw new Error(`${file}:${i + 1}: unclosed code fence`)
    const before = i > 0 ? lines[i - 1].trim() : ''
    const notRun = /^<!--\s*not run:\s*(.*?)\s*-->$/.exec(before)
    const fileMark = /^<!--\s*file:\s*(\S+)\s*-->$/.exec(before)
    const runsIn = /^<!--\s*runs in (?:Chromium in )?(test\/\S+\.test\.ts)\s*-->$/.exec(before)
    blocks.push({
      file,
      line: i + 1,
      lang: open[2].trim().split(/\s+/)[0] ?? '',
      code: lines.slice(i + 1, end).join('\n') + '\n',
      marker: notRun !== null ? { kind: 'not run', reason: notRun[1] } : fileMark !== null ? { kind: 'file', name: fileMark[1] }
        : runsIn !== null ? { kind: 'runs in', test: runsIn[1] } : null,
    })
    i = end
  }
  return blocks
}

const DOCUMENTS = ['README.md', ...readdirSync(repoPath('docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

interface Ran { code: number | null, stdout: string, stderr: string }

async function run (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return await new Promise((resolve) => {
    execFile(command, args, { cwd, env, timeout: BLOCK_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, stdout, stderr: err !== null && code === null ? `${stderr}\n${err.message}` : stderr })
    })
  })
}

/** Point the examples at the test server. */
function localise (code: string, host: string): string {
  return code
    .replace(/(?:127\.0\.0\.1|localhost):8080/g, host)
    .replace(/port: 8080/g, 'port: 0')
}

t.test('every code block is run or marked with a reason', async (t) => {
  for (const doc of DOCUMENTS) {
    const blocks = codeBlocks(doc, readFileSync(repoPath(doc), 'utf8'))
    for (const b of blocks) {
      const where = `${doc}:${b.line} (\`\`\`${b.lang})`
      if (b.marker?.kind === 'not run') {
        t.ok(b.marker.reason.length >= 10, `${where}: not run, because ${b.marker.reason}`)
      } else if (b.marker?.kind === 'runs in') {
        // Run by a test of its own (e.g. in a browser): that test must exist and read this document.
        const test = b.marker.test
        t.ok(existsSync(repoPath(test)) && readFileSync(repoPath(test), 'utf8').includes(path.basename(doc)), `${where}: run by ${test}`)
      } else if (b.marker?.kind === 'file') {
        const name = b.marker.name
        const users = blocks.filter((o) => o.marker === null && RUNNERS.has(o.lang) && o.code.includes(name))
        t.ok(users.length > 0, `${where}: file ${name} is used by a block that runs`)
      } else {
        t.ok(RUNNERS.has(b.lang), `${where}: runs as ${b.lang || '(no language)'}, or needs <!-- not run: reason -->`)
      }
    }
  }
})

t.test('the runnable blocks run against a real server', async (t) => {
  const { server, url } = await startServer(t, { shm: true, capacity: 256 * 1024 * 1024, blockSize: 16 * 1024 * 1024 })
  addDemoImages(server.store)
  // `cam1` is the examples' image: always there, and committed to every 50 ms so that waits for a change end.
  server.store.create({ id: 'cam1', width: 640, height: 480, mode: 'RGB' })
  const frame = new Uint8Array(640 * 480 * 3)
  let tick = 0
  const ticker = setInterval(() => {
    frame.fill(tick++ & 0xff)
    server.store.write('cam1', frame).catch(() => {})
  }, 50)
  t.teardown(() => clearInterval(ticker))

  const work = mkdtempSync(path.join(os.tmpdir(), 'pixelport-docs-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  // `pixelport` for the shell, and `import 'pixelport'` for modules: this package, built.
  const bin = path.join(work, 'bin')
  mkdirSync(bin)
  writeFileSync(path.join(bin, 'pixelport'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 })
  mkdirSync(path.join(work, 'node_modules'))
  symlinkSync(ROOT, path.join(work, 'node_modules', 'pixelport'))
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, PYTHONPATH: repoPath('python/src'), PIXELPORT_URL: url }
  delete env.PIXELPORT_TOKEN
  const host = new URL(url).host

  // Documents in parallel (each in its own folder), the blocks of one document in order.
  await Promise.all(DOCUMENTS.map((doc) => t.test(doc, async (t: Test) => {
    const dir = path.join(work, doc.replace(/\W/g, '_'))
    mkdirSync(dir)
    const blocks = codeBlocks(doc, readFileSync(repoPath(doc), 'utf8'))
    for (const b of blocks) if (b.marker?.kind === 'file') writeFileSync(path.join(dir, b.marker.name), localise(b.code, host))
    for (const b of blocks) {
      if (b.marker !== null || !RUNNERS.has(b.lang)) continue
      const where = `${doc}:${b.line} (${b.lang})`
      const code = localise(b.code, host)
      if (b.lang === 'json') {
        t.doesNotThrow(() => JSON.parse(code), `${where} is JSON`)
        continue
      }
      const file = path.join(dir, `block-${b.line}.${b.lang === 'js' ? 'mjs' : b.lang === 'python' ? 'py' : 'sh'}`)
      writeFileSync(file, code)
      const ran = b.lang === 'js'
        ? await run(process.execPath, [file], dir, env)
        : b.lang === 'python'
          ? await run(PYTHON, [file], dir, env)
          : await run('/bin/bash', ['-e', '-o', 'pipefail', file], dir, env)
      t.equal(ran.code, 0, `${where} runs`, { stdout: ran.stdout.slice(-2000), stderr: ran.stderr.slice(-4000) })
      // A worker that throws is logged on stderr while the process still exits 0: silence is part of passing.
      t.equal(ran.stderr, '', `${where} prints no error or warning`)
    }
  })))
})
