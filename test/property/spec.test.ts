/**
 * Create specs, by property: random combinations of shape, typestr, mode, width and height — well-formed,
 * out of range and of the wrong type — are accepted exactly when the documented rules hold (README "The
 * descriptor"), the accepted ones have byteLength = product(shape) × itemsize, and the refused ones fail with
 * a registry error naming a rule that was broken. Nothing else is ever thrown.
 */
import fc from 'fast-check'
import t from 'tap'
import { DTYPES, normalizeTypestr } from '../../protocol/dtypes.js'
import { MAX_NDIM } from '../../protocol/layout.js'
import { MODES } from '../../protocol/modes.js'
import { specFromRequest, type CreateRequest, type SpecLimits } from '../../protocol/spec.js'
import { fuzzSettings, registryErrorOf } from '../helpers/fuzz.js'

const LIMITS: SpecLimits = { maxDimension: 4096, maxImageBytes: 1 << 24 }

const ITEM_SIZE = new Map(DTYPES.map((d) => [d.typestr, d.itemSize]))
const MODE_BY_NAME = new Map(MODES.map((m) => [m.name, m]))

/** A dimension: mostly valid, sometimes at or past a bound, sometimes not an integer or not a number. */
const dim = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 64 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, -1, 1, LIMITS.maxDimension, LIMITS.maxDimension + 1, 2 ** 31, 2 ** 53, -(2 ** 31)) },
  { weight: 1, arbitrary: fc.constantFrom(1.5, NaN, Infinity, -Infinity, -0, 1e-300) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('4', null, true, [4], { toString: 1 }, 4n) },
)

/** A typestr: supported ones, numpy's other spellings of them, and things that are not typestrs. */
const typestr = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...DTYPES.map((d) => d.typestr)) },
  { weight: 2, arbitrary: fc.constantFrom('u1', '=u2', '|u2', '<u1', '>u1', 'f8', '=f4', '|f4', 'b1', '>b1') },
  { weight: 2, arbitrary: fc.constantFrom('<c8', '<f2', '|V8', '<M8', 'u', '', '<', '<u', '<u16', '<u0', '>>u2', 'RGB', '|u1 ', '\0u1') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1, null, ['<u1'], { toString: 1 }) },
)

const mode = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...MODES.map((m) => m.name)) },
  { weight: 1, arbitrary: fc.constantFrom('rgb', 'RGBa', 'I;16L', 'XYZ', '', ' L', 'L ') },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1, [], { toString: 1 }) },
)

const shape = fc.oneof(
  { weight: 6, arbitrary: fc.array(dim, { minLength: 1, maxLength: MAX_NDIM }) },
  { weight: 1, arbitrary: fc.array(dim, { minLength: 0, maxLength: MAX_NDIM + 2 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('4,4', 4, null, { length: 2, 0: 4, 1: 4 }) },
)

/** A request: mostly one of the two documented forms, sometimes a mix or missing pieces. */
const request = fc.oneof(
  fc.record({ width: dim, height: dim, mode }, { requiredKeys: ['mode'] }),
  fc.record({ shape, typestr }, { requiredKeys: ['shape'] }),
  fc.record({ width: dim, height: dim, mode, shape, typestr }, { requiredKeys: [] }),
)

const isDim = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= LIMITS.maxDimension
/** The one dimension of a 1-D shape: any positive integer (the byte limit bounds it). */
const isLength = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1

type Rule = 'one form' | 'mode' | 'dims' | 'shape' | 'typestr' | 'dtype' | 'size'

/** The documented rules: which are broken by `req`, and the shape and item size when none are. */
function model (req: Record<string, unknown>): { broken: Rule[], shape?: number[], itemSize?: number } {
  const broken: Rule[] = []
  const has = (k: string): boolean => req[k] !== undefined && (k !== 'mode' || req[k] !== null)
  let shape: number[] | undefined
  let itemSize: number | undefined
  if (has('mode')) {
    if (has('shape') || has('typestr')) broken.push('one form')
    const m = typeof req.mode === 'string' ? MODE_BY_NAME.get(req.mode) : undefined
    if (m === undefined) broken.push('mode')
    if (!isDim(req.width) || !isDim(req.height)) broken.push('dims')
    if (m !== undefined && isDim(req.width) && isDim(req.height)) {
      shape = m.channels === 1 ? [req.height, req.width] : [req.height, req.width, m.channels]
      itemSize = ITEM_SIZE.get(m.typestr)
    }
  } else if (has('shape') || has('typestr')) {
    if (has('width') || has('height')) broken.push('one form')
    const s = req.shape
    if (!Array.isArray(s) || s.length < 1 || s.length > MAX_NDIM) broken.push('shape')
    else if (!(s.length === 1 ? isLength(s[0]) : s.every(isDim))) broken.push('dims')
    if (typeof req.typestr !== 'string') broken.push('typestr')
    else {
      itemSize = ITEM_SIZE.get(normalizeTypestr(req.typestr))
      if (itemSize === undefined) broken.push('dtype')
    }
    if (Array.isArray(s) && (s.length === 1 ? isLength(s[0]) : s.length > 0 && s.every(isDim))) shape = s as number[]
  } else {
    broken.push('one form')
  }
  if (broken.length === 0 && shape!.reduce((n, d) => n * d, itemSize!) > LIMITS.maxImageBytes) broken.push('size')
  return { broken, shape, itemSize }
}

/** The codes each rule may be reported with. */
const CODES: Record<Rule, string[]> = {
  'one form': ['PXP_ERR_VALIDATION'],
  mode: ['PXP_ERR_BAD_MODE'],
  dims: ['PXP_ERR_BAD_SHAPE'],
  shape: ['PXP_ERR_BAD_SHAPE'],
  typestr: ['PXP_ERR_VALIDATION'],
  dtype: ['PXP_ERR_BAD_DTYPE'],
  size: ['PXP_ERR_TOO_LARGE'],
}

t.test('accepted exactly when the documented rules hold; byteLength = product(shape) × itemsize', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const seen = { accepted: 0, refused: 0 }
  fc.assert(fc.property(request, (req) => {
    const expected = model(req)
    let spec: ReturnType<typeof specFromRequest> | undefined
    const err = registryErrorOf(() => { spec = specFromRequest(req as CreateRequest, LIMITS) })
    if (err !== undefined) {
      seen.refused++
      if (expected.broken.length === 0) throw new Error(`refused a valid request with ${err.code}: ${err.message}`)
      const allowed = expected.broken.flatMap((r) => CODES[r])
      if (!allowed.includes(err.code)) throw new Error(`${err.code} for broken rules [${expected.broken.join(', ')}]`)
      return
    }
    seen.accepted++
    if (expected.broken.length > 0) throw new Error(`accepted though [${expected.broken.join(', ')}] broken`)
    const s = spec!
    if (s.shape.length !== expected.shape!.length || s.shape.some((d, i) => d !== expected.shape![i])) {
      throw new Error(`shape [${s.shape.join(', ')}], expected [${expected.shape!.join(', ')}]`)
    }
    if (s.dtype.itemSize !== expected.itemSize) throw new Error('item size')
    if (s.byteLength !== s.shape.reduce((n, d) => n * d, 1) * s.dtype.itemSize) throw new Error('byteLength')
    if (s.rowBytes * s.height !== s.byteLength || s.height !== s.shape[0]) throw new Error('rowBytes × height')
    if (s.width !== (s.shape.length >= 2 ? s.shape[1] : 1)) throw new Error('width')
    if (s.channels * s.width * s.height !== s.shape.reduce((n, d) => n * d, 1)) throw new Error('channels')
    if (s.mode !== null && (s.mode.typestr !== s.dtype.typestr || s.mode.channels !== s.channels)) throw new Error('mode disagrees with dtype or channels')
    if (!Object.isFrozen(s) || !Object.isFrozen(s.shape)) throw new Error('spec is mutable')
  }), { seed, numRuns: runs(3000) })
  t.ok(seen.accepted > 100 && seen.refused > 100, `accepted ${seen.accepted}, refused ${seen.refused}`)
})
