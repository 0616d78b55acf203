/**
 * Create-request validation: what becomes an ImageSpec, and the messages for what does not.
 */
import t from 'tap'
import fc from 'fast-check'
import { DTYPES, dtypeOf } from '../../protocol/dtypes.js'
import { modeOf } from '../../protocol/modes.js'
import { cStrides, DEFAULT_SPEC_LIMITS, isCContiguous, makeSpec, specFromRequest, type CreateRequest } from '../../protocol/spec.js'

t.test('mode requests', async (t) => {
  const rgb = specFromRequest({ mode: 'RGB', width: 5, height: 3 })
  t.match(rgb, { width: 5, height: 3, channels: 3, rowBytes: 15, byteLength: 45, shape: [3, 5, 3] })
  t.equal(rgb.dtype, dtypeOf('|u1'))
  t.equal(rgb.mode, modeOf('RGB'))
  t.ok(Object.isFrozen(rgb) && Object.isFrozen(rgb.shape))
  t.match(specFromRequest({ mode: 'F', width: 2, height: 7 }), { shape: [7, 2], rowBytes: 8, byteLength: 56, channels: 1 })
})

t.test('shape + typestr requests', async (t) => {
  t.match(specFromRequest({ shape: [3, 5, 3], typestr: 'u1' }), { mode: { name: 'RGB' }, byteLength: 45 })
  t.match(specFromRequest({ shape: [3, 5], typestr: '<f8' }), { mode: null, rowBytes: 40, byteLength: 120 })
  t.match(specFromRequest({ shape: [6], typestr: '|u1' }), { width: 1, height: 6, channels: 1, rowBytes: 1 })
  t.match(specFromRequest({ shape: [2, 3, 4, 5], typestr: '<i2' }), { width: 3, height: 2, channels: 20, rowBytes: 120, byteLength: 240 })
  t.match(specFromRequest({ mode: null as unknown as string, shape: [1, 1], typestr: '|u1' }), { byteLength: 1 }, 'mode: null means no mode')
})

t.test('bad requests: code and a message that names the problem', async (t) => {
  const cases: Array<[CreateRequest | unknown, string, RegExp]> = [
    [{}, 'PXP_ERR_VALIDATION', /give \{ width, height, mode \} or \{ shape, typestr \}/],
    [{ mode: 'L', width: 1, height: 1, shape: [1, 1] }, 'PXP_ERR_VALIDATION', /not both/],
    [{ mode: 'L', width: 1, height: 1, typestr: '|u1' }, 'PXP_ERR_VALIDATION', /not both/],
    [{ shape: [1, 1], typestr: '|u1', width: 1 }, 'PXP_ERR_VALIDATION', /not both/],
    [{ shape: [1, 1] }, 'PXP_ERR_VALIDATION', /typestr is required/],
    [{ typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /shape must be an array of 1 to 8/],
    [{ shape: [], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /1 to 8 dimensions/],
    [{ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /1 to 8 dimensions/],
    [{ shape: '2,2', typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /must be an array/],
    [{ shape: [2, 0], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /shape\[1\] must be an integer from 1 to 65536, got 0/],
    [{ shape: [2, -3], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /shape\[1\].*got -3/],
    [{ shape: [2.5, 2], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /shape\[0\].*got 2\.5/],
    [{ shape: ['2', 2], typestr: '|u1' }, 'PXP_ERR_BAD_SHAPE', /shape\[0\].*got "2"/],
    [{ shape: [2, 2], typestr: '<c16' }, 'PXP_ERR_BAD_DTYPE', /Unsupported typestr "<c16"/],
    [{ mode: 'XYZ', width: 1, height: 1 }, 'PXP_ERR_BAD_MODE', /Unknown image mode "XYZ"/],
    [{ mode: 'L', height: 1 }, 'PXP_ERR_BAD_SHAPE', /width must be an integer.*got undefined/],
    [{ mode: 'L', width: 1 }, 'PXP_ERR_BAD_SHAPE', /height must be an integer/],
    [{ mode: 'L', width: 65537, height: 1 }, 'PXP_ERR_BAD_SHAPE', /width must be an integer from 1 to 65536, got 65537/],
    [{ mode: 'L', width: Number.NaN, height: 1 }, 'PXP_ERR_BAD_SHAPE', /got null/],
    [{ mode: 'L', width: Number.POSITIVE_INFINITY, height: 1 }, 'PXP_ERR_BAD_SHAPE', /width/],
    [{ mode: 'RGBA', width: 65536, height: 65536 }, 'PXP_ERR_TOO_LARGE', /17179869184 bytes exceeds the per-image limit of 1073741824/],
  ]
  for (const [req, code, message] of cases) t.throws(() => specFromRequest(req as CreateRequest), { code, message }, JSON.stringify(req))
})

t.test('explicit limits', async (t) => {
  const limits = { maxDimension: 10, maxImageBytes: 100 }
  t.throws(() => specFromRequest({ mode: 'L', width: 11, height: 1 }, limits), { code: 'PXP_ERR_BAD_SHAPE', message: /from 1 to 10, got 11/ })
  t.throws(() => specFromRequest({ mode: 'RGB', width: 10, height: 4 }, limits), { code: 'PXP_ERR_TOO_LARGE', message: /120 bytes.*100 bytes/ })
  t.equal(specFromRequest({ mode: 'L', width: 10, height: 10 }, limits).byteLength, 100, 'exactly the limit is fine')
  t.equal(DEFAULT_SPEC_LIMITS.maxDimension, 65536)
})

t.test('sizes: byteLength is the product, rowBytes * height is byteLength', async (t) => {
  const dim = fc.integer({ min: 1, max: 300 })
  fc.assert(fc.property(fc.array(dim, { minLength: 1, maxLength: 4 }), fc.constantFrom(...DTYPES), (shape, dtype) => {
    const spec = makeSpec(shape, dtype, null, { maxDimension: 300, maxImageBytes: Number.POSITIVE_INFINITY })
    const product = shape.reduce((a, b) => a * b, dtype.itemSize)
    if (spec.byteLength !== product) throw new Error('byteLength')
    if (spec.rowBytes * spec.height !== product || !Number.isInteger(spec.rowBytes)) throw new Error('rowBytes')
    const strides = cStrides(shape, dtype.itemSize)
    if (strides[shape.length - 1] !== dtype.itemSize || strides[0] * shape[0] !== product) throw new Error('strides')
    if (!isCContiguous(shape, strides, dtype.itemSize)) throw new Error('C strides are C-contiguous')
  }), { numRuns: 500 })
  t.pass('500 shapes')
})

t.test('C contiguity', async (t) => {
  t.same(cStrides([3, 5, 4], 1), [20, 4, 1])
  t.same(cStrides([3, 5], 8), [40, 8])
  t.ok(isCContiguous([3, 5, 4], [20, 4, 1], 1))
  t.notOk(isCContiguous([3, 2, 4], [20, 4, 1], 1), 'a view narrower than its parent')
  t.ok(isCContiguous([1, 2, 4], [20, 4, 1], 1), 'a single row is contiguous whatever its row stride')
  t.notOk(isCContiguous([2, 2], [2, 4], 2), 'Fortran order')
})
