/**
 * Copies between C order and a strided view (protocol/strided-copy.ts): a view's rows lie inside its root's,
 * `rowStride` elements apart, and nothing between them may be touched.
 */
import t from 'tap'
import { fromCOrder, toCOrder } from '../../protocol/strided-copy.js'

// A 3x2 view at (1, 1) of a 5x4 one-channel root: its data runs from its first element to its last.
const root = Uint16Array.from({ length: 20 }, (_, i) => i)
const view = root.subarray(6, 6 + 5 + 3)
const rows = { rowLength: 3, height: 2, rowStride: 5 }

t.test('toCOrder gathers the rows of a view into a fresh array', async (t) => {
  const out = toCOrder(view, rows)
  t.ok(out instanceof Uint16Array)
  t.same(Array.from(out), [6, 7, 8, 11, 12, 13])
  const plain = Uint16Array.from([1, 2, 3, 4, 5, 6])
  const copy = toCOrder(plain, rows)
  t.same(Array.from(copy), [1, 2, 3, 4, 5, 6], 'contiguous data is copied whole')
  t.not(copy.buffer, plain.buffer, 'always a copy')
})

t.test('fromCOrder writes C-order pixels into the view and leaves the rest of the root alone', async (t) => {
  const target = Uint16Array.from(root)
  fromCOrder(Uint16Array.from([90, 91, 92, 93, 94, 95]), target.subarray(6, 14), rows)
  t.same(Array.from(target), [0, 1, 2, 3, 4, 5, 90, 91, 92, 9, 10, 93, 94, 95, 14, 15, 16, 17, 18, 19])
  const whole = new Uint16Array(6)
  fromCOrder(Uint16Array.from([1, 2, 3, 4, 5, 6]), whole, rows)
  t.same(Array.from(whole), [1, 2, 3, 4, 5, 6], 'a contiguous target takes the source as it is')
})
