// Stale clean-up at start: a killed store's segments go, a live store's stay, doubtful ones stay.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import {
  cleanStaleSegments, currentOwner, newStoreId, ownerMarkerName, ownerState, parseShmFileName, segmentName, shmPath,
} from '../../shm/names.js'
import { ShmBlockProvider } from '../../server/memory/shm-provider.js'
import { plainEnv, shmAddon, shmFiles, STORE_CHILD, testPrefix, childArgs } from '../helpers/shm.js'

const loaded = shmAddon(t)

/** Leave behind what a crashed store leaves: segments and a marker saying `owner`. */
function fakeStore (prefix: string, owner: object | string | null, blocks = 2): string {
  const storeId = newStoreId()
  for (let i = 0; i < blocks; i++) writeFileSync(shmPath(segmentName(prefix, storeId, i)), 'x', { mode: 0o600 })
  if (owner !== null) {
    writeFileSync(shmPath(ownerMarkerName(prefix, storeId)), typeof owner === 'string' ? owner : JSON.stringify(owner), { mode: 0o600 })
  }
  return storeId
}

t.test('names parse back, and nothing else parses', async (t) => {
  const id = newStoreId()
  t.same(parseShmFileName('pxp', `pxp-${id}-12`), { storeId: id, part: 12 })
  t.same(parseShmFileName('pxp', `pxp-${id}-owner`), { storeId: id, part: 'owner' })
  for (const other of [`pxp-${id}`, `pxp-${id}-x`, `pxp-${id}-01`, `pxp-${id}-1-2`, `pxpx-${id}-1`, `pxp-${id.slice(1)}-1`,
    `pxp-${id.toUpperCase()}-1`, `other-${id}-1`, `pxp-${id}--1`]) {
    t.equal(parseShmFileName('pxp', other), null, other)
  }
})

t.test('ownerState: this process is alive; a reused pid, an exited pid are dead; another pid namespace is unknown', async (t) => {
  const me = currentOwner()
  t.equal(ownerState(me), 'alive')
  t.equal(ownerState({ ...me, startTime: null }), 'alive', 'without a start time the pid decides')
  t.equal(ownerState({ ...me, startTime: '1' }), 'dead', 'same pid, other start time: the pid was reused')
  t.equal(ownerState({ ...me, pidNamespace: 'pid:[1]' }), 'unknown')
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  t.equal(ownerState({ ...me, pid: child.pid as number }), 'dead', 'an exited (and reaped) child')
  t.equal(ownerState({ ...me, pid: 1, startTime: null }), 'alive', 'pid 1 always runs')
})

if (loaded !== null) {
  t.test('a killed store\'s segments are removed at the next start; a live store\'s are kept', async (t) => {
    const prefix = testPrefix(t)
    const child = spawn(process.execPath, [...childArgs(STORE_CHILD), 'store', prefix, '3'], { stdio: ['pipe', 'pipe', 'inherit'], env: plainEnv() })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    const [line] = await once(child.stdout.setEncoding('utf8'), 'data') as [string]
    const store = JSON.parse(line) as { pid: number, storeId: string, names: string[] }
    t.equal(store.pid, child.pid)
    const childFiles = [...store.names.map((n) => n.slice(1)), ownerMarkerName(prefix, store.storeId).slice(1)].sort()
    t.same(shmFiles(prefix), childFiles)

    // The child is alive: a new store must leave its segments alone.
    const second = new ShmBlockProvider({ prefix })
    t.teardown(() => second.close())
    t.same(second.staleCleanup, { removed: [], removedFiles: 0, live: [store.storeId], unknown: [], failures: [] })
    const mine = second.allocate(4096)
    for (const f of childFiles) t.ok(existsSync(`/dev/shm/${f}`), `live ${f} kept`)

    child.kill('SIGKILL')
    await once(child, 'exit')

    const third = new ShmBlockProvider({ prefix })
    t.teardown(() => third.close())
    t.same(third.staleCleanup?.removed, [store.storeId])
    t.equal(third.staleCleanup?.removedFiles, 4, 'three segments and the marker')
    t.same(third.staleCleanup?.live, [second.storeId], 'the second store (this process) is live')
    for (const f of childFiles) t.notOk(existsSync(`/dev/shm/${f}`), `dead ${f} removed`)
    t.ok(existsSync(shmPath(mine.name as string)), 'the live store\'s segment is still there')
    t.equal(new Int32Array(loaded.addon.open(mine.name as string), 0, 1)[0], 0)
  })

  t.test('doubtful stores are kept: no marker, an unreadable marker, another pid namespace', async (t) => {
    const prefix = testPrefix(t)
    const noMarker = fakeStore(prefix, null)
    const garbage = fakeStore(prefix, '{"version":1,"pid":')
    const wrongShape = fakeStore(prefix, { version: 2, pid: 123 })
    const otherNs = fakeStore(prefix, { ...currentOwner(), pid: 999_999, pidNamespace: 'pid:[1]' })
    const reused = fakeStore(prefix, { ...currentOwner(), startTime: '1' })
    const before = shmFiles(prefix).length
    const report = cleanStaleSegments(prefix)
    t.same(report.unknown.sort(), [noMarker, garbage, wrongShape, otherNs].sort())
    t.same(report.removed, [reused], 'only the store whose pid was reused by someone else')
    t.equal(report.removedFiles, 3)
    t.equal(shmFiles(prefix).length, before - 3)
    const again = cleanStaleSegments(prefix)
    t.same(again.removed, [], 'a second clean-up finds nothing more to do')
    t.same(again.failures, [])
  })

  t.test('other prefixes are never touched', async (t) => {
    const mine = testPrefix(t)
    const theirs = testPrefix(t)
    const deadOwner = { ...currentOwner(), startTime: '1' }
    fakeStore(theirs, deadOwner)
    const id = fakeStore(mine, deadOwner)
    t.same(cleanStaleSegments(mine).removed, [id])
    t.equal(shmFiles(theirs).length, 3)
    t.same(cleanStaleSegments(theirs).removed.length, 1)
    t.same(shmFiles(theirs), [])
  })

  t.test('the marker records this process: pid, start time, pid namespace', async (t) => {
    const prefix = testPrefix(t)
    const provider = new ShmBlockProvider({ prefix })
    t.teardown(() => provider.close())
    const marker = JSON.parse(readFileSync(shmPath(ownerMarkerName(prefix, provider.storeId)), 'utf8'))
    t.match(marker, { version: 1, pid: process.pid, startTime: /^\d+$/, pidNamespace: /^pid:\[\d+\]$/ })
  })
}
