/**
 * The dtype table: numpy spellings, internal consistency, and the code numbers stored in shared memory.
 */
import t from 'tap'
import { DTYPES, MAX_ITEM_SIZE, dtypeByCode, dtypeOf, isTypestr, normalizeTypestr } from '../../protocol/dtypes.js'
import { ALIGNMENT } from '../../server/memory/run-allocator.js'

t.test('typestr normalisation follows numpy', async (t) => {
  const cases: Array<[string, string]> = [
    ['u1', '|u1'], ['=u1', '|u1'], ['<u1', '|u1'], ['>u1', '|u1'], ['|u1', '|u1'],
    ['i1', '|i1'], ['b1', '|b1'], ['<b1', '|b1'],
    ['u2', '<u2'], ['=u2', '<u2'], ['<u2', '<u2'], ['>u2', '>u2'],
    ['f4', '<f4'], ['=f8', '<f8'], ['>f8', '>f8'], ['i8', '<i8'], ['f2', '<f2'], ['=f2', '<f2'],
  ]
  for (const [given, normal] of cases) {
    t.equal(normalizeTypestr(given), normal, `${given} → ${normal}`)
    t.equal(dtypeOf(given).typestr, normal)
    t.ok(isTypestr(given))
  }
})

t.test('unsupported typestrs are refused with PXP_ERR_BAD_DTYPE', async (t) => {
  const bad: unknown[] = ['', 'u', '<c8', '>f2', '<u3', '|u2x', 'u01', 'U1', '<U8', 'O', '<m8', 'float32', '<<u2', ' u1', 'u1 ', null, 1, {}, undefined]
  for (const typestr of bad) {
    t.throws(() => dtypeOf(typestr as string), { code: 'PXP_ERR_BAD_DTYPE' }, JSON.stringify(typestr) ?? String(typestr))
    t.notOk(isTypestr(typestr), `isTypestr(${String(typestr)})`)
  }
  t.throws(() => dtypeByCode(0), { code: 'PXP_ERR_BAD_DTYPE' })
  t.throws(() => dtypeByCode(999), { code: 'PXP_ERR_BAD_DTYPE' })
})

t.test('the table is consistent', async (t) => {
  const codes = new Set(DTYPES.map((d) => d.code))
  const names = new Set(DTYPES.map((d) => d.typestr))
  t.equal(codes.size, DTYPES.length, 'codes unique')
  t.equal(names.size, DTYPES.length, 'typestrs unique')
  t.notOk(codes.has(0), 'code 0 is never a dtype (a zeroed slot word must not look like one)')
  for (const d of DTYPES) {
    t.match(d.typestr, /^[<>|][biuf][1248]$/, d.typestr)
    t.equal(d.kind, d.typestr[1])
    t.equal(d.itemSize, Number(d.typestr[2]))
    t.equal(d.typestr[0] === '|', d.itemSize === 1, 'single-byte types and only they are "|"')
    t.equal(d.littleEndian, d.typestr[0] === '|' ? null : d.typestr[0] === '<')
    t.equal(d.native, d.typestr[0] !== '>', 'big-endian types have no host TypedArray')
    t.equal(d.array.BYTES_PER_ELEMENT, d.native ? d.itemSize : 1)
    t.equal(dtypeOf(d.typestr), d)
    t.equal(dtypeByCode(d.code), d)
    t.ok(Object.isFrozen(d))
    t.ok(d.itemSize <= MAX_ITEM_SIZE)
  }
  t.equal(ALIGNMENT % MAX_ITEM_SIZE, 0, 'allocation alignment suits every dtype')
  // The set the issue asks for, at least.
  for (const s of ['|u1', '|i1', '|b1', '<u2', '<i2', '<u4', '<i4', '<f4', '<f8', '>u2', '>i2', '>u4', '>i4', '>f4', '>f8', '<f2']) {
    t.ok(names.has(s), `${s} supported`)
  }
})

t.test('codes are stable: they are stored in shared memory', async (t) => {
  t.same(Object.fromEntries(DTYPES.map((d) => [d.typestr, d.code])), {
    '|u1': 1, '|i1': 2, '|b1': 3, '<u2': 4, '<i2': 5, '<u4': 6, '<i4': 7, '<f4': 8, '<f8': 9,
    '<u8': 10, '<i8': 11, '>u2': 12, '>i2': 13, '>u4': 14, '>i4': 15, '>f4': 16, '>f8': 17, '<f2': 18,
  })
})
