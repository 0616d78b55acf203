// The shared-memory addon on its own: segments, errors, futex edge cases, in one process.
import t from 'tap'
import { existsSync, statSync } from 'node:fs'
import { shmPath } from '../../shm/names.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'

const MiB = 1024 * 1024
const loaded = shmAddon(t)

function ms (since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6
}

if (loaded !== null) {
  const { addon } = loaded

  t.test('create makes a zero-filled, fully sized segment with mode 0600; open maps the same memory', async (t) => {
    const name = `/${testPrefix(t)}-a`
    const created = addon.create(name, 3 * MiB + 5, 0o600)
    t.ok(created instanceof SharedArrayBuffer, 'a real SharedArrayBuffer')
    t.equal(created.byteLength, 3 * MiB + 5)
    const bytes = new Uint8Array(created)
    t.equal(bytes.findIndex((b) => b !== 0), -1, 'zero-filled')
    const st = statSync(shmPath(name))
    t.equal(st.size, 3 * MiB + 5)
    t.equal(st.mode & 0o777, 0o600)
    // fallocate reserved the pages: the file's blocks cover its size before anything was written.
    t.ok(st.blocks * 512 >= st.size, `pages reserved up front (${st.blocks * 512} bytes allocated)`)

    const opened = addon.open(name)
    t.equal(opened.byteLength, created.byteLength, 'size from fstat')
    bytes[3 * MiB + 4] = 0xab
    t.equal(new Uint8Array(opened)[3 * MiB + 4], 0xab, 'a write through one mapping is seen through the other')
    Atomics.add(new Int32Array(opened, 0, 8), 7, 3)
    t.equal(Atomics.load(new Int32Array(created, 0, 8), 7), 3)
    addon.unlink(name)
  })

  t.test('group mode is applied whatever the umask', async (t) => {
    const name = `/${testPrefix(t)}-g`
    const old = process.umask(0o077)
    try {
      addon.create(name, 4096, 0o660)
    } finally {
      process.umask(old)
    }
    t.equal(statSync(shmPath(name)).mode & 0o777, 0o660)
    addon.unlink(name)
  })

  t.test('create never adopts an existing segment: EEXIST, and the existing bytes are untouched', async (t) => {
    const name = `/${testPrefix(t)}-x`
    const first = new Int32Array(addon.create(name, 8192, 0o600))
    first[100] = 77
    t.throws(() => addon.create(name, 4096, 0o600), { code: 'EEXIST', syscall: 'shm_open', path: name, errno: -17 })
    t.equal(statSync(shmPath(name)).size, 8192, 'not truncated')
    t.equal(first[100], 77)
    addon.unlink(name)
  })

  t.test('a size /dev/shm cannot hold is ENOSPC at create, and leaves no file behind', async (t) => {
    const prefix = testPrefix(t)
    const name = `/${prefix}-big`
    t.throws(() => addon.create(name, 2 ** 50, 0o600), { code: 'ENOSPC', syscall: 'posix_fallocate' })
    t.same(shmFiles(prefix), [])
  })

  t.test('open and unlink of a missing segment are ENOENT', async (t) => {
    const name = `/${testPrefix(t)}-missing`
    t.throws(() => addon.open(name), { code: 'ENOENT', syscall: 'shm_open' })
    t.throws(() => addon.unlink(name), { code: 'ENOENT', syscall: 'shm_unlink' })
  })

  t.test('an empty segment (a creator between open and fallocate) cannot be opened', async (t) => {
    const prefix = testPrefix(t)
    const { writeFileSync } = await import('node:fs')
    writeFileSync(shmPath(`/${prefix}-empty`), '', { mode: 0o600 })
    t.throws(() => addon.open(`/${prefix}-empty`), { code: 'ENODATA' })
  })

  t.test('unlink removes the name; existing mappings keep working', async (t) => {
    const name = `/${testPrefix(t)}-u`
    const view = new Int32Array(addon.create(name, 4096, 0o600))
    addon.unlink(name)
    t.notOk(existsSync(shmPath(name)))
    view[10] = 5
    t.equal(view[10], 5)
    t.throws(() => addon.open(name), { code: 'ENOENT' })
  })

  t.test('bad arguments throw TypeError/RangeError with Node-style codes', async (t) => {
    const prefix = testPrefix(t)
    for (const bad of ['', '/', 'no-slash', '/a/b', '/' + 'x'.repeat(256), '/..']) {
      t.throws(() => addon.create(bad, 4096, 0o600), { code: 'ERR_INVALID_ARG_VALUE' }, `name ${JSON.stringify(bad)}`)
    }
    t.throws(() => addon.open(42 as unknown as string), TypeError)
    for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
      t.throws(() => addon.create(`/${prefix}-n`, bad, 0o600), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, `length ${bad}`)
    }
    t.throws(() => addon.create(`/${prefix}-n`, '4096' as unknown as number, 0o600), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => addon.create(`/${prefix}-n`, 4096, 0o1000), { code: 'ERR_OUT_OF_RANGE' })
    t.same(shmFiles(prefix), [], 'no argument error created a file')

    const sab = new SharedArrayBuffer(16)
    t.throws(() => addon.futexWait(new ArrayBuffer(16) as unknown as SharedArrayBuffer, 0, 0, 0), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => addon.futexWait(sab, 2, 0, 0), { code: 'ERR_OUT_OF_RANGE' }, 'unaligned')
    t.throws(() => addon.futexWait(sab, 16, 0, 0), { code: 'ERR_OUT_OF_RANGE' }, 'past the end')
    t.throws(() => addon.futexWait(sab, -4, 0, 0), { code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => addon.futexWait(new SharedArrayBuffer(2), 0, 0, 0), { code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => addon.futexWait(sab, 0, 'x' as unknown as number, 0), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => addon.futexWait(sab, 0, 0, '5' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => addon.futexWake(sab, 0, -1), { code: 'ERR_OUT_OF_RANGE' })
  })

  t.test('futexWait returns not-equal at once, and timed-out after the timeout', async (t) => {
    const sab = new SharedArrayBuffer(8)
    const view = new Int32Array(sab)
    view[1] = 3
    t.equal(addon.futexWait(sab, 4, 2, 10_000), 'not-equal')
    let started = process.hrtime.bigint()
    t.equal(addon.futexWait(sab, 4, 3, 30), 'timed-out')
    t.ok(ms(started) >= 29, `waited ${ms(started).toFixed(1)} ms for a 30 ms timeout`)
    started = process.hrtime.bigint()
    t.equal(addon.futexWait(sab, 4, 3, -5), 'timed-out', 'a negative timeout does not block')
    t.ok(ms(started) < 1000)
    t.equal(addon.futexWake(sab, 4), 0, 'nobody to wake')
    t.equal(addon.futexWake(sab, 4, Infinity), 0)
  })

  t.test('create and attach times (64 MiB and 33 MiB)', async (t) => {
    const prefix = testPrefix(t)
    for (const size of [64 * MiB, 33 * MiB]) {
      const name = `/${prefix}-${size}`
      let started = process.hrtime.bigint()
      addon.create(name, size, 0o600)
      const created = ms(started)
      started = process.hrtime.bigint()
      addon.open(name)
      const attached = ms(started)
      addon.unlink(name)
      t.comment(`${size / MiB} MiB segment: create ${created.toFixed(2)} ms, attach ${attached.toFixed(3)} ms`)
      t.ok(attached < 1000)
    }
  })
}
