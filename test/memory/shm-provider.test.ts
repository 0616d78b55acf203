// ShmBlockProvider: naming, modes, release/close unlinking, errors, the arena on top, and the fallback choice.
import t from 'tap'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Arena } from '../../server/memory/arena.js'
import { HeapBlockProvider } from '../../server/memory/block-provider.js'
import { ownerMarkerName, readOwnerMarker, shmPath } from '../../shm/names.js'
import { createBlockProvider, ShmBlockProvider } from '../../server/memory/shm-provider.js'
import { plainEnv, runChild, shmAddon, shmFiles, STORE_CHILD, testPrefix, childArgs } from '../helpers/shm.js'

const loaded = shmAddon(t)

if (loaded !== null) {
  t.test('segments are named /<prefix>-<128-bit store id>-<n>, mode 0600, with an owner marker', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    t.teardown(() => provider.close())
    t.match(provider.storeId, /^[0-9a-f]{32}$/)
    const other = new ShmBlockProvider({ prefix, cleanStale: false })
    t.teardown(() => other.close())
    t.not(other.storeId, provider.storeId, 'every store draws a fresh id')

    const a = provider.allocate(10_000)
    const b = provider.allocate(4096)
    t.equal(a.name, `/${prefix}-${provider.storeId}-0`)
    t.equal(b.name, `/${prefix}-${provider.storeId}-1`)
    t.equal(a.buffer.byteLength, 10_000)
    for (const m of [a, b]) {
      const st = statSync(shmPath(m.name as string))
      t.equal(st.mode & 0o777, 0o600, `${m.name} is owner-only`)
      t.equal(st.size, m.buffer.byteLength)
    }
    t.same(provider.segmentNames, [a.name, b.name])
    const marker = readOwnerMarker(shmPath(ownerMarkerName(prefix, provider.storeId)))
    t.match(marker, { version: 1, pid: process.pid })
    t.equal(statSync(shmPath(ownerMarkerName(prefix, provider.storeId))).mode & 0o077, 0, 'marker is not readable by others')

    const view = new Int32Array(a.buffer, 0, 16)
    t.equal(Atomics.add(view, 3, 2), 0)
    t.equal(Atomics.compareExchange(view, 3, 2, 9), 2)
    t.equal(Atomics.load(view, 3), 9)
  })

  t.test('the group mode is an explicit option; other modes and bad prefixes are rejected', async (t) => {
    const prefix = testPrefix(t)
    const shared = new ShmBlockProvider({ prefix, mode: 0o660, cleanStale: false })
    t.teardown(() => shared.close())
    const m = shared.allocate(4096)
    t.equal(statSync(shmPath(m.name as string)).mode & 0o777, 0o660)
    for (const mode of [0o666, 0o644, 0o700, 0o400, 600]) {
      t.throws(() => new ShmBlockProvider({ prefix, mode }), { code: 'PXP_ERR_VALIDATION', message: /shm mode/ }, `mode 0o${mode.toString(8)}`)
    }
    for (const bad of ['', 'has-hyphen', 'a/b', 'x'.repeat(65), '../etc']) {
      t.throws(() => new ShmBlockProvider({ prefix: bad }), { code: 'PXP_ERR_VALIDATION', message: /shm prefix/ }, `prefix ${JSON.stringify(bad)}`)
    }
    t.same(shmFiles(prefix).length, 2, 'rejected options created nothing (one segment + one marker)')
  })

  t.test('release unlinks the segment; close unlinks the rest and the marker, once', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    const a = provider.allocate(4096)
    const b = provider.allocate(8192)
    const c = provider.allocate(4096)
    t.equal(shmFiles(prefix).length, 4)
    provider.release(b)
    t.same(shmFiles(prefix), [a, c].map((m) => (m.name as string).slice(1)).concat(ownerMarkerName(prefix, provider.storeId).slice(1)).sort())
    new Uint8Array(b.buffer)[0] = 1 // the mapping outlives the name
    t.throws(() => provider.release(b), RangeError, 'a second release is a caller bug')
    t.throws(() => provider.release({ buffer: new SharedArrayBuffer(8), name: null }), RangeError)
    t.throws(() => provider.release({ buffer: new SharedArrayBuffer(8), name: `/${prefix}-elsewhere-0` }), RangeError)

    provider.close()
    t.same(shmFiles(prefix), [], 'nothing left in /dev/shm')
    provider.close()
    t.throws(() => provider.allocate(4096), { code: 'PXP_ERR_CLOSED' })
  })

  t.test('a segment removed behind the provider\'s back does not break release or close', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    const a = provider.allocate(4096)
    const b = provider.allocate(4096)
    loaded.addon.unlink(a.name as string)
    loaded.addon.unlink(b.name as string)
    provider.release(a)
    provider.close()
    t.same(shmFiles(prefix), [])
  })

  t.test('no room in /dev/shm is PXP_ERR_SHM_FULL at allocate, and the provider stays usable', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    t.teardown(() => provider.close())
    const err = t.throws(() => provider.allocate(2 ** 50), { code: 'PXP_ERR_SHM_FULL', status: 507 }) as Error
    t.match(err.cause, { code: 'ENOSPC' }, 'the system error is kept as the cause')
    t.same(shmFiles(prefix), [ownerMarkerName(prefix, provider.storeId).slice(1)], 'no half-made segment')
    t.throws(() => provider.allocate(0), RangeError)
    t.throws(() => provider.allocate(1.5), RangeError)
    t.equal(provider.allocate(4096).buffer.byteLength, 4096)
  })

  t.test('a name collision is PXP_ERR_SHM and never adopts the existing file', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    t.teardown(() => provider.close())
    // Someone pre-creates the next name (which requires knowing the store id).
    writeFileSync(shmPath(`/${prefix}-${provider.storeId}-0`), 'precious')
    t.throws(() => provider.allocate(4096), { code: 'PXP_ERR_SHM', message: /EEXIST/ })
    t.equal(statSync(shmPath(`/${prefix}-${provider.storeId}-0`)).size, 8, 'not truncated')
    t.equal(provider.allocate(4096).name, `/${prefix}-${provider.storeId}-1`, 'the next number is used')
  })

  t.test('the arena allocates through it: dedicated blocks come and go as segments', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    const arena = new Arena({ provider, blockSize: 64 * 1024, capacity: 1024 * 1024 })
    const small = arena.allocate(1000)
    const large = arena.allocate(200 * 1024)
    t.equal(arena.stats().provider, 'shm')
    t.equal(shmFiles(prefix).length, 3, 'one shared block, one dedicated block, one marker')
    const name = arena.block(large.block)?.memory.name as string
    arena.free(large)
    t.notOk(shmFiles(prefix).includes(name.slice(1)), 'the dedicated block\'s segment is gone with its image')
    new Uint8Array(arena.block(small.block)?.memory.buffer as SharedArrayBuffer)[small.offset] = 1
    arena.close()
    t.same(shmFiles(prefix), [], 'arena.close() closed the provider')
  })

  t.test('a process that exits without close() still unlinks its segments', async (t) => {
    const prefix = testPrefix(t)
    const child = await runChild(process.execPath, [...childArgs(STORE_CHILD), 'exit', prefix, '2'], { env: plainEnv() })
    t.equal(child.code, 0, child.stderr)
    t.same(shmFiles(prefix), [])
  })

  t.test('createBlockProvider: heap unless asked; shm when asked and available', async (t) => {
    const prefix = testPrefix(t)
    const heap = createBlockProvider({ shm: false })
    t.ok(heap.provider instanceof HeapBlockProvider)
    t.equal(heap.warning, null)
    const shm = createBlockProvider({ shm: true, prefix })
    t.teardown(() => shm.provider.close())
    t.equal(shm.provider.kind, 'shm')
    t.equal(shm.warning, null)
    t.throws(() => createBlockProvider({ shm: true, prefix: 'bad-prefix' }), { code: 'PXP_ERR_VALIDATION' }, 'bad options are not "unavailable"')
    t.throws(() => createBlockProvider({ shm: true, prefix, mode: 0o777 }), { code: 'PXP_ERR_VALIDATION' })
  })

  t.test('createBlockProvider falls back to the heap with a reason when the addon is missing or broken', async (t) => {
    const prefix = testPrefix(t)
    const dir = t.testdir({ 'broken.node': 'not an ELF file\n'.repeat(100) })
    const cases = [
      { addon: '/nonexistent/pixelport_shm.node', reason: /does not load: Cannot find module/ },
      { addon: join(dir, 'broken.node'), reason: /does not load: .*invalid ELF header/ },
    ]
    for (const c of cases) {
      const child = await runChild(process.execPath, [...childArgs(STORE_CHILD), 'choose', prefix], {
        env: { ...plainEnv(), PIXELPORT_SHM_ADDON: c.addon },
      })
      t.equal(child.code, 0, child.stderr)
      const reply = JSON.parse(child.stdout.trim()) as { kind: string, warning: string }
      t.equal(reply.kind, 'heap')
      t.match(reply.warning, /^shared memory unavailable, using in-process blocks: /)
      t.match(reply.warning, c.reason)
    }
    t.same(shmFiles(prefix), [], 'a fallback leaves nothing in /dev/shm')
  })
}
