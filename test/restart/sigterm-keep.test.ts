// SIGTERM with --keep: a graceful shutdown that leaves the segments, and `pixelport serve --recover` adopts
// them with every image exactly as it was (same bytes, same generation). The CLI's own --keep too.
import t from 'tap'
import { serveCli } from '../helpers/cli.js'
import { httpFingerprints, SIZE_FLAGS, startPopulated, stopCli } from '../helpers/restart.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'

const loaded = shmAddon(t)

if (loaded !== null) {
  t.test('SIGTERM + keep, then --recover: everything exactly as it was; --keep again; a final clean stop leaves nothing', async (t) => {
    const prefix = testPrefix(t)
    const first = await startPopulated(t, prefix, true)
    first.child.kill('SIGTERM')
    t.same(await first.exited, [0, null], 'a graceful shutdown')
    const kept = shmFiles(prefix)
    t.ok(kept.some((f) => f.endsWith('-table')) && kept.some((f) => f.endsWith('-owner')), 'table and marker stay')
    t.notOk(kept.some((f) => f.endsWith('-attach')), 'the socket goes')

    // The CLI adopts, and with --keep leaves the segments again on SIGTERM.
    const second = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--recover', '--keep', ...SIZE_FLAGS])
    t.match(second.output(), `recover: adopted store ${first.storeId}: 100 images`)
    t.same((await httpFingerprints(second.url)).prints, first.fingerprints, 'every image, byte and generation')
    const put = await fetch(`${second.url}/images/block%2FL/data`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(first.fingerprints.find((f) => f.id === 'block/L')!.shape.reduce((a, b) => a * b, 1)).fill(3) })
    t.equal(put.status, 200)
    const written = (await put.json() as { generation: number }).generation
    t.equal(await stopCli(second.child), 0)

    const third = await serveCli(t, ['--shm', '--shm-prefix', prefix, '--recover', ...SIZE_FLAGS])
    const after = await httpFingerprints(third.url)
    t.equal(after.prints.find((f) => f.id === 'block/L')!.generation, written, 'the write made before the second restart is there')
    t.ok(after.bytes.get('block/L')!.every((b) => b === 3))
    t.equal(await stopCli(third.child), 0)
    t.same(shmFiles(prefix), [], 'without --keep, a clean stop unlinks everything')
  })

  t.test('--recover and --keep need --shm', async (t) => {
    await t.rejects(serveCli(t, ['--recover']), /--recover and --keep need --shm/)
  })
}
