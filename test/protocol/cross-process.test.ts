/**
 * The small pieces of the cross-process protocol: who is woken when, lock waits on holders in other
 * processes, the shared table's header, and the names a store's files carry.
 */
import t from 'tap'
import { isSharedTable, ringServer, wakeOtherProcesses, wordOffset, type FutexWake } from '../../protocol/cross-process.js'
import { HEADER, isExternalToken, LOCK_TOKEN, SLOT, SLOT_FLAG, slotBase, tableBytes } from '../../protocol/layout.js'
import { lockAsync } from '../../protocol/sync.js'
import { attachSocketPath, claimsSegmentName, newStoreId, parseShmFileName, tableSegmentName } from '../../shm/names.js'
import { ShmBlockProvider } from '../../server/memory/shm-provider.js'
import { ImageTable } from '../../server/store/image-table.js'
import { shmAddon, testPrefix } from '../helpers/shm.js'

/** A futexWake that records its calls (the addon's is exercised across processes in test/memory and test/attach). */
function recorder (): { wake: FutexWake, calls: Array<[number, number | undefined]> } {
  const calls: Array<[number, number | undefined]> = []
  return { calls, wake: (_buffer, byteOffset, count) => { calls.push([byteOffset, count]); return 0 } }
}

const fields = (id: string) => ({
  id, flags: 0, dtype: 1, mode: 0, shape: [2, 2], strides: [2, 1], block: 0, byteOffset: 0, byteLength: 4, parent: -1, frames: 1, frameStride: 64,
})

t.test('a commit futex-wakes GENERATION only when a waiter in another process registered', async (t) => {
  const words = new Int32Array(new SharedArrayBuffer(tableBytes(4)))
  const { wake, calls } = recorder()
  wakeOtherProcesses(words, 2, wake)
  t.same(calls, [], 'nobody registered: no system call')
  words[slotBase(2) + SLOT.FUTEX_WAITERS] = 1
  wakeOtherProcesses(words, 2, wake)
  t.same(calls, [[wordOffset(2, SLOT.GENERATION), undefined]], 'registered: GENERATION of that slot, every waiter')
  t.equal(wordOffset(2, SLOT.GENERATION), (16 + 2 * 80 + 3) * 4)
  ringServer(words, wake)
  t.equal(words[HEADER.EXTERNAL_COMMITS], 1, 'the ring moves EXTERNAL_COMMITS')
  t.same(calls.at(-1), [HEADER.EXTERNAL_COMMITS * 4, undefined], 'and wakes the relay')
})

t.test('lock waits look again when the holder is another process (its unlock cannot notify us)', async (t) => {
  const words = new Int32Array(new SharedArrayBuffer(tableBytes(2)))
  const at = slotBase(1) + SLOT.WRITE_LOCK
  t.ok(isExternalToken(LOCK_TOKEN.EXTERNAL + 3))
  t.notOk(isExternalToken(LOCK_TOKEN.SERVER))
  t.notOk(isExternalToken(7))
  words[at] = LOCK_TOKEN.EXTERNAL + 3
  const started = performance.now()
  const waiting = lockAsync(words, 1, LOCK_TOKEN.SERVER, 10_000)
  // Released the way another process releases it: a store, no notify reaches this process.
  setTimeout(() => Atomics.store(words, at, 0), 20)
  t.equal(await waiting, true)
  t.ok(performance.now() - started < 5000, 'taken soon after the release, long before the timeout')
  t.equal(words[at], LOCK_TOKEN.SERVER)
  // A client in another process treats every holder but itself as foreign.
  words[at] = 5
  const mine = lockAsync(words, 1, LOCK_TOKEN.EXTERNAL, 10_000, (holder) => holder !== LOCK_TOKEN.EXTERNAL)
  setTimeout(() => Atomics.store(words, at, 0), 20)
  t.equal(await mine, true)
})

t.test('names: the table, claims and the attach socket belong to their store', async (t) => {
  const id = newStoreId()
  t.same(parseShmFileName('pxp', tableSegmentName('pxp', id).slice(1)), { storeId: id, part: 'table' })
  t.same(parseShmFileName('pxp', claimsSegmentName('pxp', id, 12).slice(1)), { storeId: id, part: 'a12' })
  t.equal(attachSocketPath('pxp', id), `/dev/shm/pxp-${id}-attach`)
  t.same(parseShmFileName('pxp', `pxp-${id}-attach`), { storeId: id, part: 'attach' })
  for (const bad of [`pxp-${id}-a`, `pxp-${id}-a01`, `pxp-${id}-ax`, `pxp-${id}-tables`, `pxp-${id}-a12345678901`]) {
    t.equal(parseShmFileName('pxp', bad), null, bad)
  }
  t.ok(attachSocketPath('x'.repeat(48), id).length < 108, 'the longest prefix still fits a Unix socket address')
})

if (shmAddon(t) !== null) {
  t.test('a table in a segment: fixed size, flagged shared, keyed, futex waiters survive slot reuse', async (t) => {
    const provider = new ShmBlockProvider({ prefix: testPrefix(t), cleanStale: false })
    t.teardown(() => provider.close())
    const memory = provider.allocateTable(tableBytes(3))
    const { wake, calls } = recorder()
    const table = new ImageTable(3, { memory, futexWake: wake })
    t.equal(table.shared, true)
    t.equal(table.segment, memory.name)
    t.equal(table.mappedSlots, 3, 'all slots mapped from the start')
    t.ok(isSharedTable(table.words))
    t.ok(table.words[HEADER.ATTACH_KEY] !== 0 || table.words[HEADER.ATTACH_KEY + 1] !== 0, 'a random attach key')
    const slots = [table.allocSlot(), table.allocSlot(), table.allocSlot()]
    t.same(slots, [0, 1, 2])
    t.throws(() => table.allocSlot(), { code: 'PXP_ERR_TOO_MANY_IMAGES' })
    table.publish(1, fields('a'))
    Atomics.store(table.words, slotBase(1) + SLOT.FUTEX_WAITERS, 1)
    table.notifyCommit(1)
    t.same(calls.map(([offset]) => offset), [wordOffset(1, SLOT.GENERATION)], 'a commit reaches the registered waiter')
    table.retire(1)
    t.equal(calls.length, 2, 'a delete wakes it too (its image is gone)')
    table.free(1)
    table.publish(1, { ...fields('b'), flags: SLOT_FLAG.READONLY })
    t.equal(table.words[slotBase(1) + SLOT.FUTEX_WAITERS], 1, 'a waiter still leaving the old image keeps its count')
    t.throws(() => new ImageTable(4, { memory }), RangeError, 'memory smaller than the slots is refused')
    t.equal(new ImageTable(2).shared, false)
    t.notOk(isSharedTable(new ImageTable(2).words))
  })
}
