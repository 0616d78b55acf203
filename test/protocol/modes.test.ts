/**
 * Image modes: Pillow's names, channel counts and typestrs, and the shapes numpy.asarray gives them.
 */
import t from 'tap'
import { dtypeOf } from '../../protocol/dtypes.js'
import { MODES, MODE_NAMES, inferMode, modeByCode, modeOf, modeShape } from '../../protocol/modes.js'

// From Pillow: numpy.asarray(Image.new(mode, (w, h))) has these channel counts and typestrs.
const PILLOW: Record<string, [number, string]> = {
  1: [1, '|b1'], L: [1, '|u1'], P: [1, '|u1'], LA: [2, '|u1'], PA: [2, '|u1'],
  RGB: [3, '|u1'], YCbCr: [3, '|u1'], LAB: [3, '|u1'], HSV: [3, '|u1'],
  RGBA: [4, '|u1'], RGBX: [4, '|u1'], CMYK: [4, '|u1'],
  'I;16': [1, '<u2'], 'I;16B': [1, '>u2'], I: [1, '<i4'], F: [1, '<f4'],
}

t.test('every Pillow mode, with Pillow\'s shape and typestr', async (t) => {
  t.same([...MODE_NAMES].sort(), Object.keys(PILLOW).sort())
  for (const m of MODES) {
    const [channels, typestr] = PILLOW[m.name]
    t.equal(m.channels, channels, `${m.name} channels`)
    t.equal(m.typestr, typestr, `${m.name} typestr`)
    t.equal(dtypeOf(m.typestr).typestr, m.typestr, `${m.name}: typestr is a supported dtype, already normalised`)
    t.same(modeShape(m, 5, 3), channels === 1 ? [3, 5] : [3, 5, channels], `${m.name} shape is (h, w[, c])`)
    t.equal(modeOf(m.name), m)
    t.equal(modeByCode(m.code), m)
    t.ok(Object.isFrozen(m))
  }
})

t.test('codes unique, non-zero and stable', async (t) => {
  const codes = MODES.map((m) => m.code)
  t.equal(new Set(codes).size, codes.length)
  t.notOk(codes.includes(0), '0 means "no mode" in the slot word')
  t.equal(modeByCode(0), null)
  t.equal(modeByCode(99), null)
  t.same(Object.fromEntries(MODES.map((m) => [m.name, m.code])), {
    1: 1, L: 2, P: 3, LA: 4, PA: 5, RGB: 6, YCbCr: 7, LAB: 8, HSV: 9, RGBA: 10, RGBX: 11, CMYK: 12,
    'I;16': 13, 'I;16B': 14, I: 15, F: 16,
  })
})

t.test('unknown modes', async (t) => {
  for (const name of ['', 'rgb', 'RGBa', 'I;16L', 'BGR', 'I;32', ' L', 'toString', '__proto__', 'constructor']) {
    t.throws(() => modeOf(name), { code: 'PXP_ERR_BAD_MODE' }, JSON.stringify(name))
  }
})

t.test('inferMode picks the common mode for a raw shape + typestr', async (t) => {
  const cases: Array<[number[], string, string | null]> = [
    [[4, 4], '|u1', 'L'], [[4, 4, 2], '|u1', 'LA'], [[4, 4, 3], '|u1', 'RGB'], [[4, 4, 4], '|u1', 'RGBA'],
    [[4, 4], '<u2', 'I;16'], [[4, 4], '>u2', 'I;16B'], [[4, 4], '<i4', 'I'], [[4, 4], '<f4', 'F'], [[4, 4], '|b1', '1'],
    [[4, 4, 5], '|u1', null], [[4], '|u1', null], [[4, 4, 3], '<f4', null], [[4, 4, 1], '|u1', 'L'],
    [[4, 4, 3, 1], '|u1', null], [[4, 4], '<f8', null],
  ]
  for (const [shape, typestr, name] of cases) {
    t.equal(inferMode(shape, typestr)?.name ?? null, name, `${JSON.stringify(shape)} ${typestr}`)
  }
  for (const m of MODES) {
    const inferred = inferMode(modeShape(m, 3, 2), m.typestr)
    t.ok(inferred !== null && inferred.channels === m.channels && inferred.typestr === m.typestr, `${m.name} infers a mode of the same layout`)
  }
})
