/**
 * Descriptors of views, by property: for random images (modes, raw shapes of 2-4 dimensions, every dtype)
 * and random rectangles — inside, on the edge, outside, views of views — a view is created exactly when the
 * rectangle lies inside its parent, and its descriptor is consistent: shape is [height, width, ...the
 * parent's trailing axes], strides are the root image's C strides, offset points at the rectangle's first
 * element, every element addressed lies inside the root's bytes, and walking shape with strides from offset
 * in the root's bytes gives exactly the bytes a read of the view returns. Refusals are PXP_ERR_BAD_REGION.
 */
import fc from 'fast-check'
import t from 'tap'
import { DTYPES } from '../../protocol/dtypes.js'
import { cStrides } from '../../protocol/spec.js'
import type { ImageStore } from '../../server/store/image-store.js'
import { fuzzSettings, registryErrorOf } from '../helpers/fuzz.js'
import { newStore, seededBytes } from '../helpers/store.js'
import { stridedCopy } from '../helpers/http.js'

const parent = fc.oneof(
  fc.record({ width: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 12 }), mode: fc.constantFrom('L', 'LA', 'RGB', 'RGBA', 'I;16', 'I;16B', 'F', 'I', '1') }),
  fc.record({
    shape: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 4 }),
    typestr: fc.constantFrom(...DTYPES.map((d) => d.typestr)),
  }),
)

/** A rectangle that may reach past the image: coordinates from -1 to a little beyond its size. */
const rect = fc.oneof(
  { weight: 4, arbitrary: fc.record({ x: fc.nat(3), y: fc.nat(3), width: fc.integer({ min: 1, max: 4 }), height: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ x: fc.integer({ min: -1, max: 14 }), y: fc.integer({ min: -1, max: 14 }), width: fc.integer({ min: 0, max: 14 }), height: fc.integer({ min: 0, max: 14 }) }) },
)

/** Check a view's descriptor against its root's and the bytes a read returns. */
async function checkView (store: ImageStore, id: string, rootX: number, rootY: number): Promise<void> {
  const d = store.describe(id)
  const root = store.describe(d.base)
  const ai = d.__array_interface__
  const item = Number(d.typestr.slice(2))
  const strides = ai.strides ?? cStrides(ai.shape, item)
  const rootStrides = root.__array_interface__.strides ?? cStrides(root.shape, item)
  if (d.shape.length !== root.shape.length || d.shape.slice(2).some((n, i) => n !== root.shape[i + 2])) throw new Error('trailing axes differ from the root')
  if (d.shape[0] !== d.height || (d.shape.length > 1 && d.shape[1] !== d.width)) throw new Error('shape vs width/height')
  if (ai.strides !== null && strides.some((s, i) => s !== rootStrides[i])) throw new Error(`strides [${strides.join(', ')}], root [${rootStrides.join(', ')}]`)
  const offset = ai.offset ?? 0
  if (offset !== rootY * rootStrides[0] + rootX * rootStrides[1]) throw new Error(`offset ${offset} for (${rootX}, ${rootY})`)
  const last = offset + d.shape.reduce((s, n, i) => s + (n - 1) * strides[i], 0) + item
  if (last > root.byteLength) throw new Error(`addresses byte ${last} of ${root.byteLength}`)
  if (d.byteLength !== d.shape.reduce((n, x) => n * x, item)) throw new Error('byteLength')
  if (d.view === null || d.view.parent !== root.id || d.view.x !== rootX || d.view.y !== rootY) throw new Error('view info')
  const rootBytes = (await store.read(root.id)).bytes
  const viewBytes = (await store.read(id)).bytes
  if (!Buffer.from(stridedCopy(rootBytes, d.shape, strides, offset, item)).equals(Buffer.from(viewBytes))) throw new Error('bytes through the array interface differ from a read')
}

t.test('views: created exactly when inside; descriptors address the right bytes', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const store = newStore(t, { blockSize: 64 * 1024, capacity: 4 * 1024 * 1024 })
  let n = 0
  const seen = { views: 0, refused: 0 }
  await fc.assert(fc.asyncProperty(parent, rect, rect, async (spec, r1, r2) => {
    const id = `p${n++}`
    const d = store.create({ id, ...spec })
    await store.write(id, seededBytes(d.byteLength, n))
    try {
      let base = { id, width: d.width, height: d.height, x: 0, y: 0 }
      for (const [i, r] of [r1, r2].entries()) {
        const inside = r.x >= 0 && r.y >= 0 && r.width >= 1 && r.height >= 1 && r.x + r.width <= base.width && r.y + r.height <= base.height
        const viewId = `${id}/v${i}`
        const err = registryErrorOf(() => store.createView(base.id, { id: viewId, ...r }), ['PXP_ERR_BAD_REGION'])
        if ((err === undefined) !== inside) throw new Error(`${inside ? 'refused' : 'accepted'} ${JSON.stringify(r)} of ${base.width}x${base.height}`)
        if (err !== undefined) {
          seen.refused++
          return
        }
        seen.views++
        base = { id: viewId, width: r.width, height: r.height, x: base.x + r.x, y: base.y + r.y }
        await checkView(store, viewId, base.x, base.y)
      }
    } finally {
      store.delete(id)
    }
  }), { seed, numRuns: runs(300) })
  t.ok(seen.views > 30 && seen.refused > 30, `${seen.views} views, ${seen.refused} refused`)
  t.equal(store.stats().used, 0, 'every parent and view gone')
})
