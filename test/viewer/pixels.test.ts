/**
 * What the viewer puts on the canvas for each mode and dtype (viewer/pixels.ts), and the counters it shows
 * (viewer/stats.ts). Plain functions: no browser needed.
 */
import t from 'tap'
import { toRgba, whyNotDrawable } from '../../viewer/pixels.js'
import { FrameStats } from '../../viewer/stats.js'

const u8 = (...v: number[]): Uint8Array => new Uint8Array(v)
const rgbaOf = (frame: Parameters<typeof toRgba>[0]): number[] => [...toRgba(frame).rgba]

t.test('8-bit modes', async (t) => {
  t.same(rgbaOf({ shape: [1, 2], typestr: '|u1', mode: 'L', bytes: u8(0, 200) }), [0, 0, 0, 255, 200, 200, 200, 255], 'L: grey, opaque')
  t.same(rgbaOf({ shape: [1, 1, 2], typestr: '|u1', mode: 'LA', bytes: u8(50, 7) }), [50, 50, 50, 7], 'LA: grey with alpha')
  t.same(rgbaOf({ shape: [1, 1, 3], typestr: '|u1', mode: 'RGB', bytes: u8(1, 2, 3) }), [1, 2, 3, 255], 'RGB')
  const bytes = u8(1, 2, 3, 4, 5, 6, 7, 8)
  const rgba = toRgba({ shape: [1, 2, 4], typestr: '|u1', mode: 'RGBA', bytes })
  t.same([...rgba.rgba], [1, 2, 3, 4, 5, 6, 7, 8], 'RGBA as is')
  t.equal(rgba.rgba.buffer, bytes.buffer, 'RGBA is not copied')
  t.same(rgbaOf({ shape: [1, 1, 4], typestr: '|u1', mode: 'RGBX', bytes: u8(1, 2, 3, 0) }), [1, 2, 3, 255], 'RGBX: the padding is not alpha')
  t.same(rgbaOf({ shape: [1, 1, 4], typestr: '|u1', mode: 'CMYK', bytes: u8(255, 0, 0, 0) }), [0, 255, 255, 255], 'CMYK: cyan')
  t.same(rgbaOf({ shape: [1, 1, 3], typestr: '|u1', mode: 'YCbCr', bytes: u8(128, 128, 128) }), [128, 128, 128, 255], 'YCbCr: grey stays grey')
  t.same(rgbaOf({ shape: [1, 1, 3], typestr: '|u1', mode: 'HSV', bytes: u8(0, 255, 255) }), [255, 0, 0, 255], 'HSV: red')
  t.same(rgbaOf({ shape: [1, 2], typestr: '|b1', mode: '1', bytes: u8(0, 1) }), [0, 0, 0, 255, 255, 255, 255, 255], 'mode 1: black and white')
})

t.test('16-bit, integer and float modes', async (t) => {
  const le = new Uint8Array(new Uint16Array([0, 0x8000, 0xffff]).buffer)
  t.same(rgbaOf({ shape: [1, 3], typestr: '<u2', mode: 'I;16', bytes: le }).filter((_, i) => i % 4 === 0), [0, 128, 255], 'I;16 scaled to 8 bits')
  t.same(rgbaOf({ shape: [1, 2], typestr: '>u2', mode: 'I;16B', bytes: u8(0x80, 0x00, 0xff, 0xff) }).filter((_, i) => i % 4 === 0), [128, 255], 'I;16B reads big-endian')
  const f = toRgba({ shape: [1, 3], typestr: '<f4', mode: 'F', bytes: new Uint8Array(new Float32Array([-1, 0, 3]).buffer) })
  t.same([...f.rgba].filter((_, i) => i % 4 === 0), [0, 64, 255], 'F stretched from min to max')
  t.same(f.range, [-1, 3], 'and says which range it shows')
  const nan = toRgba({ shape: [1, 3], typestr: '<f8', mode: null, bytes: new Uint8Array(new Float64Array([NaN, 2, Infinity]).buffer) })
  t.same([...nan.rgba].filter((_, i) => i % 4 === 0), [0, 0, 255], 'NaN black, infinity clamped, the finite range [2, 2]')
  const i32 = toRgba({ shape: [1, 2], typestr: '>i4', mode: null, bytes: u8(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1) })
  t.same([...i32.rgba].filter((_, i) => i % 4 === 0), [0, 255], 'big-endian int32')
  t.same(i32.range, [-1, 1])
  const unaligned = new Uint8Array(9).subarray(1)
  new DataView(unaligned.buffer, 1).setFloat32(4, 1, true)
  t.same(rgbaOf({ shape: [1, 2], typestr: '<f4', mode: 'F', bytes: unaligned }).filter((_, i) => i % 4 === 0), [0, 255], 'bytes need no alignment')
})

t.test('what cannot be drawn', async (t) => {
  t.throws(() => toRgba({ shape: [2, 2, 2, 2], typestr: '|u1', mode: null, bytes: new Uint8Array(16) }), { code: 'PXP_ERR_BAD_SHAPE' })
  t.throws(() => toRgba({ shape: [2, 2], typestr: '|u1', mode: 'L', bytes: new Uint8Array(3) }), { code: 'PXP_ERR_BYTE_COUNT' })
  t.throws(() => toRgba({ shape: [3], typestr: '|u1', mode: null, bytes: u8(9, 8, 7) }), { code: 'PXP_ERR_BAD_SHAPE' }, '1-D')
  t.throws(() => toRgba({ shape: [1, 1, 5], typestr: '|u1', mode: null, bytes: new Uint8Array(5) }), { code: 'PXP_ERR_BAD_SHAPE' }, '5 channels')
  // The placeholder's label says why, and agrees with toRgba.
  t.match(whyNotDrawable([7], '|u1'), /^1-D array of 7 values/)
  t.match(whyNotDrawable([2, 2, 2, 2], '|u1'), /^4-D array \[2×2×2×2\]/)
  t.match(whyNotDrawable([4, 4, 5], '<f4'), /^5 channels: a picture has 1 \(grey\)/)
  t.match(whyNotDrawable([4, 4], '<c8'), /dtype <c8 is not drawn/)
  for (const [shape, typestr] of [[[4, 4], '|u1'], [[4, 4, 4], '<f8'], [[4, 4, 1], '>u2'], [[2, 2], '|b1'], [[2, 2, 3], '<i8']] as const) {
    t.equal(whyNotDrawable(shape, typestr), null, `[${shape.join(', ')}] ${typestr} is drawn`)
  }
})

t.test('frames per second, generation, skipped', async (t) => {
  const stats = new FrameStats()
  stats.record(10, 0)
  t.equal(stats.skipped, 0, 'the first frame skips nothing')
  stats.record(11, 100)
  stats.record(14, 200)
  t.equal(stats.skipped, 2, 'generations 12 and 13 were never received')
  t.equal(stats.generation, 14)
  t.equal(stats.fps(999), 3, 'three frames in the last second')
  t.equal(stats.fps(1150), 1, 'older frames drop out')
  stats.record(0, 1200)
  t.equal(stats.skipped, 2, 'an image replaced (generation back to 0) is no gap')
  t.equal(stats.frames, 4)
})
