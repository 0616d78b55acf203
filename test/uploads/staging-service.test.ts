/**
 * The staging service (server/uploads/registry.ts) on its own, over a real store: every kind of upload
 * takes its share of the budget before anything else, and however it ends — finished, aborted, a wrong
 * byte count, a timeout, shutdown — gives back all it held. An aborted overwrite leaves the image with its
 * bytes and generation; an aborted create leaves the store as it was. The transports' side is covered by
 * test/security/upload-*.test.ts, test/http and test/ws.
 */
import t, { type Test } from 'tap'
import { UploadRegistry } from '../../server/uploads/registry.js'
import { buildPng, rowsOf } from '../helpers/picture-files.js'
import { newStore, recordEvents, seededBytes, storeState } from '../helpers/store.js'
import { until } from '../helpers/until.js'

const SPEC = { mode: 'RGB', width: 16, height: 8 }
const BYTES = 16 * 8 * 3
const SOURCE = { transport: 'test', what: 'unit', client: 'here' }

function service (t: Test, clocks: { idleTimeoutMs?: number, deadlineMs?: number } = {}, budgetBytes = 4 * BYTES): { store: ReturnType<typeof newStore>, uploads: UploadRegistry } {
  const store = newStore(t)
  const uploads = new UploadRegistry(store, { budgetBytes, idleTimeoutMs: 60_000, deadlineMs: 60_000, idleBufferBytes: 4 * BYTES, ...clocks })
  t.teardown(() => uploads.abortAll())
  return { store, uploads }
}

t.test('create: bytes in order, published at finish; budget held until then', async (t) => {
  const { store, uploads } = service(t)
  const upload = uploads.create(SOURCE, { id: 'new', ...SPEC }, { declared: BYTES })
  t.same(uploads.stats(), { uploads: 1, bytes: BYTES, maxBytes: 4 * BYTES })
  const bytes = seededBytes(BYTES, 1)
  upload.write(bytes.subarray(0, 100))
  upload.write(bytes.subarray(100))
  t.equal(store.has('new'), false, 'invisible until finish')
  t.match(await upload.finish(), { id: 'new', generation: 0 })
  t.same((await store.read('new')).bytes, bytes)
  t.same(uploads.stats().bytes, 0, 'budget back')
  upload.abort()
  t.equal(store.has('new'), true, 'an abort after finish changes nothing')
})

t.test('create aborted, short or overflowing: the store is exactly as it was', async (t) => {
  const { store, uploads } = service(t)
  store.create({ id: 'other', ...SPEC })
  const before = storeState(store)
  const events = recordEvents(store)
  t.teardown(events.stop)

  const aborted = uploads.create(SOURCE, { id: 'a', ...SPEC })
  aborted.write(seededBytes(50, 2))
  aborted.abort()
  aborted.abort()
  t.same(storeState(store), before, 'abort: nothing left, synchronously')

  const short = uploads.create(SOURCE, { id: 'a', ...SPEC })
  short.write(seededBytes(BYTES - 1, 2))
  await t.rejects(short.finish(), { code: 'PXP_ERR_BYTE_COUNT' })
  const over = uploads.create(SOURCE, { id: 'a', ...SPEC })
  t.throws(() => over.write(seededBytes(BYTES + 1, 2)), { code: 'PXP_ERR_BYTE_COUNT' })
  t.throws(() => over.write(new Uint8Array(1)), { code: 'PXP_ERR_CLOSED' }, 'nothing more after a failed write')
  t.throws(() => uploads.create(SOURCE, { id: 'a', ...SPEC }, { declared: BYTES + 3 }), { code: 'PXP_ERR_BYTE_COUNT' }, 'a wrong declared length, before anything is reserved')
  t.throws(() => uploads.create(SOURCE, { id: 'other', ...SPEC }), { code: 'PXP_ERR_ALREADY_EXISTS' })
  t.same(storeState(store), before)
  t.same(uploads.stats().bytes, 0, 'every refusal and failure gave its budget back')
  t.same(events.events, [], 'no events')
})

t.test('overwrite aborted or failing keeps the image\'s bytes and generation', async (t) => {
  const { store, uploads } = service(t)
  store.create({ id: 'cam', ...SPEC }, seededBytes(BYTES, 3))
  await store.write('cam', seededBytes(BYTES, 4))
  const kept = async (what: string): Promise<void> => {
    t.equal(store.generation('cam'), 1, `${what}: generation kept`)
    t.same((await store.read('cam')).bytes, seededBytes(BYTES, 4), `${what}: bytes kept`)
    t.equal(uploads.stats().bytes, 0, `${what}: budget back`)
  }
  const aborted = uploads.overwrite(SOURCE, 'cam')
  aborted.write(seededBytes(BYTES - 10, 9))
  aborted.abort()
  await kept('aborted half-way')
  const short = uploads.overwrite(SOURCE, 'cam')
  short.write(seededBytes(BYTES - 10, 9))
  await t.rejects(short.finish(), { code: 'PXP_ERR_BYTE_COUNT' })
  await kept('short at finish')
  const over = uploads.overwrite(SOURCE, 'cam')
  t.throws(() => over.write(seededBytes(BYTES + 1, 9)), { code: 'PXP_ERR_BYTE_COUNT' })
  await kept('overflow')
  t.throws(() => uploads.overwrite(SOURCE, 'cam', { declared: 5 }), { code: 'PXP_ERR_BYTE_COUNT' })
  store.create({ id: 'ro', ...SPEC, readonly: true })
  t.throws(() => uploads.overwrite(SOURCE, 'ro'), { code: 'PXP_ERR_READONLY' })

  const done = uploads.overwrite(SOURCE, 'cam')
  done.write(seededBytes(BYTES, 10))
  t.match(await done.finish(), { id: 'cam', generation: 2 })
  t.same((await store.read('cam')).bytes, seededBytes(BYTES, 10))
  const inline = uploads.overwrite(SOURCE, 'cam', { inline: seededBytes(BYTES, 11) })
  t.equal(inline.signal, null, 'inline: no clocks')
  t.equal(uploads.stats().uploads, 0, 'inline: no budget')
  t.match(await inline.finish(), { generation: 3 })
})

t.test('picture: staged, decoded at finish into a new image; a bad file leaves nothing', async (t) => {
  const { store, uploads } = service(t, {}, 1 << 20)
  const pixels = seededBytes(BYTES, 12)
  const png = buildPng({ width: 16, height: 8, bitDepth: 8, colorType: 2, rows: rowsOf(pixels, 16 * 3) })
  const before = storeState(store)
  const bad = uploads.picture(SOURCE, { id: 'bad' }, undefined, 1 << 20)
  bad.write(png.subarray(0, 40))
  await t.rejects(bad.finish(), { code: 'PXP_ERR_BAD_IMAGE' })
  t.same(storeState(store), before, 'nothing reserved for a file that does not decode')
  const tooLong = uploads.picture(SOURCE, { id: 'long' }, 10, 1 << 20)
  t.throws(() => tooLong.write(png), { code: 'PXP_ERR_BYTE_COUNT' })
  const tooLarge = uploads.picture(SOURCE, { id: 'large' }, undefined, 100)
  t.throws(() => tooLarge.write(png), { code: 'PXP_ERR_BODY_TOO_LARGE' })
  t.equal(uploads.stats().bytes, 0)

  const good = uploads.picture(SOURCE, { id: 'pic', readonly: true }, png.byteLength, 1 << 20)
  good.write(png)
  t.match(await good.finish(), { id: 'pic', mode: 'RGB', width: 16, height: 8, readonly: true })
  t.same((await store.read('pic')).bytes, pixels)
  t.equal(uploads.stats().bytes, 0)
})

t.test('the budget is one for every kind; a refusal holds nothing', async (t) => {
  const { store, uploads } = service(t, {}, 2 * BYTES)
  store.create({ id: 'cam', ...SPEC })
  const a = uploads.create(SOURCE, { id: 'a', ...SPEC })
  const b = uploads.overwrite(SOURCE, 'cam')
  const before = storeState(store)
  t.throws(() => uploads.create(SOURCE, { id: 'c', ...SPEC }), { code: 'PXP_ERR_STAGING_FULL' })
  t.throws(() => uploads.overwrite(SOURCE, 'cam'), { code: 'PXP_ERR_STAGING_FULL' })
  t.same(storeState(store), before, 'the refused create reserved nothing')
  a.abort()
  b.abort()
  t.same(uploads.stats(), { uploads: 0, bytes: 0, maxBytes: 2 * BYTES })
})

t.test('timeouts and shutdown abort through the signal; the upload then gives everything back', async (t) => {
  const { store, uploads } = service(t, { idleTimeoutMs: 30 })
  // An image first: its block stays open, so memory coming back is seen exactly.
  store.create({ id: 'other', ...SPEC })
  const before = storeState(store)
  const reports: string[] = []
  uploads.on('aborted', (report, err) => reports.push(`${report.what} ${err.code}`))
  const stalled = uploads.create(SOURCE, { id: 'slow', ...SPEC })
  stalled.write(new Uint8Array(10))
  await until(() => stalled.signal!.aborted, { what: 'the idle clock to abort the upload' })
  t.match(stalled.signal!.reason, { code: 'PXP_ERR_UPLOAD_TIMEOUT' })
  stalled.abort()
  t.same(storeState(store), before)

  const open = uploads.create(SOURCE, { id: 'open', ...SPEC })
  t.same(uploads.abortAll().map((r) => r.received), [0], 'shutdown names what it aborted')
  t.match(open.signal!.reason, { code: 'PXP_ERR_CLOSED' })
  open.abort()
  t.same(storeState(store), before)
  t.throws(() => uploads.create(SOURCE, { id: 'late', ...SPEC }), { code: 'PXP_ERR_CLOSED' }, 'no new uploads during shutdown')
  t.same(reports, ['unit PXP_ERR_UPLOAD_TIMEOUT', 'unit PXP_ERR_CLOSED'])
})
