// --persist DIR (no shared memory): every image written on graceful shutdown, atomically, and loaded at the
// next start with its bytes, generation, mode, layout, views, frames and read-only flag.
import t, { type Test } from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from '../../server/server.js'
import { fingerprints, populate } from '../helpers/restart-images.js'
import { serveCli } from '../helpers/cli.js'
import { httpFingerprints, stopCli } from '../helpers/restart.js'

const OPTIONS = { port: 0, host: '127.0.0.1', capacity: 64 << 20, blockSize: 1 << 20, maxImages: 256, maxEventLoopDelayMs: 0 }

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pixelport-persist-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('saved at close, loaded at start: the same images', async (t) => {
  const dir = join(tempDir(t), 'images')
  const first = await createServer({ ...OPTIONS, persist: dir })
  t.equal(first.recovery.persisted?.loaded, 0, 'nothing there yet')
  await populate(first.store, 100)
  const before = await fingerprints(first.store)
  await first.close()
  const files = readdirSync(dir)
  t.notOk(files.some((f) => f.endsWith('.tmp')), 'no temporary file is left')
  t.ok(files.filter((f) => f.endsWith('.json')).length === 100, 'one descriptor per image')

  const second = await createServer({ ...OPTIONS, persist: dir })
  t.teardown(() => second.close())
  t.same(second.recovery.persisted, { dir, loaded: 100, skipped: [] })
  t.same(await fingerprints(second.store), before, 'bytes, generations, modes, layouts, views, frames, read-only flags')
  // Deleted images are gone from the directory after the next save.
  second.store.delete('lines/L')
  await second.close()
  t.notOk(readdirSync(dir).some((f) => f.startsWith(Buffer.from('lines/L').toString('hex') + '.')))
})

t.test('a damaged file is skipped and reported, the rest load', async (t) => {
  const dir = tempDir(t)
  const first = await createServer({ ...OPTIONS, persist: dir })
  first.store.create({ id: 'good', width: 4, height: 4, mode: 'L' }, new Uint8Array(16).fill(9))
  first.store.create({ id: 'bad', width: 4, height: 4, mode: 'L' })
  await first.close()
  writeFileSync(join(dir, Buffer.from('bad').toString('hex') + '.bin'), new Uint8Array(3))
  const second = await createServer({ ...OPTIONS, persist: dir })
  t.teardown(() => second.close())
  t.same(second.store.ids(), ['good'])
  t.match(second.recovery.persisted?.skipped, [/^bad: 3 bytes, expected 16/])
})

t.test('persist and shm cannot be combined; persist must be a path; shm.recover a boolean', async (t) => {
  await t.rejects(createServer({ ...OPTIONS, persist: '/tmp/x', shm: true }), { code: 'PXP_ERR_VALIDATION', message: /persist and shm cannot be combined/ })
  await t.rejects(createServer({ ...OPTIONS, persist: '' }), { code: 'PXP_ERR_VALIDATION', message: /option persist must be a directory path/ })
  await t.rejects(createServer({ ...OPTIONS, shm: { recover: 'yes' as unknown as boolean } }), { code: 'PXP_ERR_VALIDATION', message: /option shm.recover must be a boolean/ })
})

t.test('the CLI: --persist DIR round trip over SIGTERM', async (t) => {
  const dir = tempDir(t)
  const first = await serveCli(t, ['--persist', dir])
  const put = await fetch(`${first.url}/images?id=cli&width=3&height=2&mode=RGB`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(18).fill(4) })
  t.equal(put.status, 201)
  const before = await httpFingerprints(first.url)
  t.equal(await stopCli(first.child), 0)
  const second = await serveCli(t, ['--persist', dir])
  t.match(second.output(), `persist: loaded 1 images from ${dir}`)
  t.same((await httpFingerprints(second.url)).prints, before.prints)
})
