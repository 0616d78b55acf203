// A table from another layout version, or a corrupted one, is refused with an error that names the files;
// the server starts empty and leaves the refused files in place. Never adopts garbage.
import t from 'tap'
import { existsSync, openSync, readSync, writeSync, closeSync } from 'node:fs'
import { HEADER, SLOT, slotBase } from '../../protocol/layout.js'
import { createServer } from '../../server/server.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'

const loaded = shmAddon(t)
const OPTIONS = { port: 0, host: '127.0.0.1', capacity: 16 << 20, blockSize: 1 << 20, maxImages: 32, maxEventLoopDelayMs: 0 }

/** A kept store with a block image, a view and a line-based image; returns its table file. */
async function keptStore (prefix: string): Promise<string> {
  const s = await createServer({ ...OPTIONS, shm: { prefix } })
  s.store.create({ id: 'a', width: 16, height: 8, mode: 'L' })
  s.store.create({ id: 'b', width: 16, height: 8, mode: 'L' })
  s.store.createView('a', { id: 'a/v', x: 1, y: 1, width: 4, height: 4 })
  s.store.create({ id: 'c', width: 5, height: 3, mode: 'RGB', layout: 'lines' })
  await s.close({ keep: true })
  return `/dev/shm/${prefix}-${s.shm.storeId}-table`
}

function pokeWord (file: string, word: number, value: number): void {
  const fd = openSync(file, 'r+')
  const b = Buffer.alloc(4)
  b.writeInt32LE(value)
  writeSync(fd, b, 0, 4, word * 4)
  closeSync(fd)
}

function peekWord (file: string, word: number): number {
  const fd = openSync(file, 'r')
  const b = Buffer.alloc(4)
  readSync(fd, b, 0, 4, word * 4)
  closeSync(fd)
  return b.readInt32LE()
}

const CASES: Array<[string, (table: string) => void, RegExp]> = [
  ['another layout version', (f) => pokeWord(f, HEADER.LAYOUT_VERSION, 99), /layout version 99, this server reads version 3/],
  ['another record size', (f) => pokeWord(f, HEADER.SLOT_WORDS, 64), /64 words per record/],
  ['a HIGH_WATER past the capacity', (f) => pokeWord(f, HEADER.HIGH_WATER, 1000), /HIGH_WATER 1000/],
  ['an unknown state', (f) => pokeWord(f, slotBase(0) + SLOT.STATE, 7), /record 0: STATE 7/],
  ['pixels outside their block', (f) => pokeWord(f, slotBase(1) + SLOT.BYTE_OFFSET, 1 << 20), /record 1: pixels at 1048576 .* outside block 0/],
  ['two images on the same bytes', (f) => pokeWord(f, slotBase(1) + SLOT.BYTE_OFFSET, peekWord(f, slotBase(0) + SLOT.BYTE_OFFSET)), /overlap in block 0/],
  ['a size that does not match the shape', (f) => pokeWord(f, slotBase(0) + SLOT.BYTE_LENGTH, 3), /record 0: BYTE_LENGTH 3 does not match/],
  ['an id that does not match its hash', (f) => pokeWord(f, slotBase(0) + SLOT.ID_BYTES, 0x41414141), /record 0: the id does not match its hash/],
  ['a view of a missing root', (f) => pokeWord(f, slotBase(2) + SLOT.PARENT, 9), /record 2 \(view\): PARENT 9/],
  ['a dtype nobody knows', (f) => pokeWord(f, slotBase(0) + SLOT.DTYPE, 99), /record 0: unknown DTYPE 99/],
  ['a line-based image whose rows are lost', (f) => pokeWord(f, slotBase(3) + SLOT.EPOCH, 77), /record 3: line-based image without its rows/],
]

if (loaded !== null) {
  for (const [what, corrupt, reason] of CASES) {
    t.test(`${what}: refused, named, left in place; the server starts empty`, async (t) => {
      const prefix = testPrefix(t)
      const table = await keptStore(prefix)
      corrupt(table)
      const files = shmFiles(prefix)
      const s = await createServer({ ...OPTIONS, shm: { prefix, recover: true } })
      t.teardown(() => s.close())
      t.equal(s.recovery.adopted, null)
      t.equal(s.recovery.refused.length, 1)
      t.match(s.recovery.refused[0].reason, reason)
      t.match(s.recovery.refused[0].reason, table.slice('/dev/shm'.length), 'the reason names the table')
      t.same(s.recovery.refused[0].files, files.map((f) => `/dev/shm/${f}`), 'and every file of the store')
      const errors = s.recovery.notes.filter((n) => n.level === 'error').map((n) => n.message).join('\n')
      t.match(errors, table, 'the log line names the files')
      t.match(errors, 'starting empty')
      t.equal(s.store.size, 0, 'nothing adopted')
      t.not(s.shm.storeId, s.recovery.refused[0].storeId, 'a new store')
      t.ok(existsSync(table), 'the refused files stay for inspection')
    })
  }

  t.test('a store whose owner is alive is never adopted', async (t) => {
    const prefix = testPrefix(t)
    const live = await createServer({ ...OPTIONS, shm: { prefix } })
    t.teardown(() => live.close())
    live.store.create({ id: 'mine', width: 4, height: 4, mode: 'L' })
    const other = await createServer({ ...OPTIONS, shm: { prefix, recover: true } })
    t.teardown(() => other.close())
    t.equal(other.recovery.adopted, null)
    t.not(other.shm.storeId, live.shm.storeId)
    t.ok(live.store.has('mine'))
  })
}
