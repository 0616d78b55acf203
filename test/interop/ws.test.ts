/**
 * A client in another language, written from docs/protocol.md alone: Python with the plain `msgpack` and
 * `websockets` libraries, run as a real process against a real server.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { repoPath } from '../helpers/paths.js'
import { startServer } from '../helpers/server.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'

async function pythonReady (): Promise<string | null> {
  try {
    await run(PYTHON, ['-c', 'import msgpack, websockets, numpy'])
    return null
  } catch {
    return `${PYTHON} with msgpack, websockets and numpy (apt-get install -y python3-msgpack python3-websockets python3-numpy)`
  }
}

t.test('the Python client speaks the protocol', async (t) => {
  const missing = await pythonReady()
  if (missing !== null) {
    t.fail(`needs ${missing}`)
    return
  }
  const { url, server } = await startServer(t, { chunkSize: 64 * 1024 })
  // An image made on this side for the Python side to read.
  const gray = new Uint16Array(30 * 20).map((_, i) => (i * 977) & 0xffff)
  const grayBytes = new Uint8Array(gray.buffer)
  server.store.create({ id: 'ts/gray16', width: 30, height: 20, mode: 'I;16' }, grayBytes)

  const script = repoPath('test/interop/ws_client.py')
  const { stdout } = await run(PYTHON, [script, url.replace(/^http/, 'ws') + '/ws'], { timeout: 60_000 })
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!)

  t.same(out.welcome, {
    protocol: 1,
    server: 'pixelport',
    limitKeys: ['chunkSize', 'defaultQueue', 'highWaterMark', 'maxImageBytes', 'maxMessageBytes', 'maxQueue', 'maxStreams', 'maxSubscriptions', 'maxUploads'],
    fragmentSize: 8192,
  })
  t.same(out.tsImage, {
    shape: [20, 30],
    dtype: '<u2',
    sha: createHash('sha256').update(grayBytes).digest('hex'),
    sum: gray.reduce((a, b) => a + b, 0),
  }, 'Python reads a TypeScript image byte-exact, as the right numpy dtype')
  t.same(out.arrayInterface, { shape: [20, 30], typestr: '<u2', version: 3 })
  t.same(out.bigDescriptor, { id: 'py/big', shape: [400, 600, 4], generation: 0 })
  t.equal(out.bigRoundTrip, true, 'chunked upload and streamed download round-trip')
  t.equal(out.bigChunks, Math.ceil(400 * 600 * 4 / (64 * 1024)))
  t.same(out.region, { equal: true, shape: [57, 101, 4] }, 'a region equals numpy slicing')
  t.equal(out.floatRoundTrip, true)
  t.same(out.event, { type: 'updated', generation: 1, skipped: 0, frameEqual: true }, 'a live frame over a subscription')
  t.same(out.errors, { missing: 'PXP_ERR_NOT_FOUND', unknownOp: 'PXP_ERR_UNKNOWN_OP', badType: 'PXP_ERR_VALIDATION', badRegion: 'PXP_ERR_BAD_REGION' })
  t.same(out.list, ['py/big', 'py/float', 'ts/gray16'])

  // What Python uploaded is in the store, byte for byte (its overwrite: 255 - original).
  const stored = Buffer.from((await server.store.read('py/big')).bytes)
  const original = Buffer.from(stored.map((v) => 255 - v))
  t.equal(createHash('sha256').update(original).digest('hex'), out.bigSha, 'the server holds exactly what Python sent')
})
