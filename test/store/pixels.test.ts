/**
 * Pieces: gather, scatter, ranges and the streaming writer, against the obvious model (one concatenated
 * buffer), for random piece layouts and random chunkings.
 */
import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import { gather, gatherRange, PieceWriter, scatter } from '../../server/store/pixels.js'

/** Pieces carved out of one backing buffer with gaps between them, like rows of a view. */
function carve (sizes: number[], gap: number): { pieces: Uint8Array[], backing: Uint8Array } {
  const backing = new Uint8Array(sizes.reduce((n, s) => n + s + gap, gap)).fill(0xee)
  let at = gap
  const pieces = sizes.map((s) => {
    const p = backing.subarray(at, at + s)
    at += s + gap
    return p
  })
  return { pieces, backing }
}

const concat = (pieces: Uint8Array[]): Uint8Array => Buffer.concat(pieces)
const layoutArb = fc.record({
  sizes: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }),
  gap: fc.integer({ min: 0, max: 3 }),
  seed: fc.integer(),
})

function fillFrom (seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (seed + i * 31) & 0xff
  return out
}

/** Gaps between pieces must never be written. */
function gapsIntact (backing: Uint8Array, pieces: Uint8Array[]): boolean {
  const owned = new Uint8Array(backing.length)
  for (const p of pieces) owned.fill(1, p.byteOffset - backing.byteOffset, p.byteOffset - backing.byteOffset + p.byteLength)
  return backing.every((b, i) => owned[i] === 1 || b === 0xee)
}

t.test('scatter then gather is the identity, and touches nothing between pieces', async (t) => {
  fc.assert(fc.property(layoutArb, fc.integer({ min: 0, max: 5 }), ({ sizes, gap, seed }, extra) => {
    const { pieces, backing } = carve(sizes, gap)
    const total = sizes.reduce((a, b) => a + b, 0)
    const source = fillFrom(seed, total)
    scatter(pieces, source)
    assert.deepEqual(concat(pieces), Buffer.from(source))
    const target = new Uint8Array(total + extra + 2).fill(7)
    gather(pieces, target, 1)
    assert.deepEqual(target.subarray(1, 1 + total), source)
    assert.equal(target[0], 7, 'nothing before the offset')
    assert.ok(target.subarray(1 + total).every((b) => b === 7), 'nothing after the end')
    assert.ok(gapsIntact(backing, pieces))
  }), { numRuns: 300 })
  t.pass('300 layouts')
})

t.test('gatherRange equals slicing the concatenation', async (t) => {
  fc.assert(fc.property(layoutArb, fc.nat(), fc.nat(), ({ sizes, gap, seed }, a, b) => {
    const { pieces } = carve(sizes, gap)
    const total = sizes.reduce((x, y) => x + y, 0)
    scatter(pieces, fillFrom(seed, total))
    const start = total === 0 ? 0 : a % (total + 1)
    const end = start + (total === 0 ? 0 : b % (total - start + 1))
    const target = new Uint8Array(end - start)
    gatherRange(pieces, start, end, target)
    assert.deepEqual(Buffer.from(target), concat(pieces).subarray(start, end))
  }), { numRuns: 500 })
  t.pass('500 ranges')
})

t.test('PieceWriter: any chunking lands like scatter; overflow writes nothing', async (t) => {
  fc.assert(fc.property(layoutArb, fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 30 }), ({ sizes, gap, seed }, cuts) => {
    const { pieces, backing } = carve(sizes, gap)
    const total = sizes.reduce((a, b) => a + b, 0)
    const source = fillFrom(seed, total)
    const writer = new PieceWriter(pieces, total)
    let at = 0
    for (const cut of cuts) {
      const n = Math.min(cut, total - at)
      assert.equal(writer.write(source.subarray(at, at + n)), true)
      at += n
    }
    assert.equal(writer.write(source.subarray(at)), true)
    assert.equal(writer.bytesWritten, total)
    assert.deepEqual(concat(pieces), Buffer.from(source))
    const snapshot = backing.slice()
    assert.equal(writer.write(new Uint8Array(1)), false, 'one byte too many is refused')
    assert.equal(writer.bytesWritten, total)
    assert.deepEqual(backing, snapshot, 'a refused chunk writes nothing')
    assert.ok(gapsIntact(backing, pieces))
  }), { numRuns: 300 })
  t.pass('300 chunkings')
})

t.test('a chunk that would overflow midway is refused whole', async (t) => {
  const { pieces } = carve([4, 4], 1)
  const w = new PieceWriter(pieces, 8)
  t.equal(w.write(new Uint8Array([1, 2, 3, 4, 5, 6])), true)
  t.equal(w.write(new Uint8Array([7, 8, 9])), false)
  t.same(concat(pieces), Buffer.from([1, 2, 3, 4, 5, 6, 0xee, 0xee]), 'the refused chunk left the last two bytes alone')
  t.equal(w.write(new Uint8Array([7, 8])), true)
  t.same(concat(pieces), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]))
})
