import t from 'tap'
import { startServer } from '../helpers/server.js'
import { call, download, put, randomBytes, storeState, stridedCopy, upload } from '../helpers/http.js'

/** The compact ROI of a C-order image (rows, then columns, then whole pixels). */
function roi (bytes: Uint8Array, width: number, pixelBytes: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * pixelBytes)
  for (let r = 0; r < h; r++) {
    const from = ((y + r) * width + x) * pixelBytes
    out.set(bytes.subarray(from, from + w * pixelBytes), r * w * pixelBytes)
  }
  return out
}

t.test('a view is zero-copy: its bytes are the ROI, its strides and offset rebuild it from the base bytes', async (t) => {
  const { url, server } = await startServer(t)
  const cases = [
    { mode: 'RGB', typestr: '|u1', channels: 3, item: 1 },
    { mode: 'I;16', typestr: '<u2', channels: 1, item: 2 },
    { mode: 'F', typestr: '<f4', channels: 1, item: 4 },
    { mode: 'RGBA', typestr: '|u1', channels: 4, item: 1 },
  ]
  for (const c of cases) {
    const W = 13
    const H = 9
    const pixelBytes = c.channels * c.item
    const base = randomBytes(W * H * pixelBytes)
    const baseId = `base-${c.mode.replace(';', '_')}`
    t.equal((await upload(url, { width: W, height: H, mode: c.mode, id: baseId }, base)).status, 201)
    for (const r of [{ x: 2, y: 3, width: 5, height: 4 }, { x: 0, y: 0, width: W, height: 2 }, { x: 12, y: 8, width: 1, height: 1 }, { x: 0, y: 4, width: W, height: 5 }]) {
      const viewId = `${baseId}/v-${r.x}-${r.y}-${r.width}-${r.height}`
      const res = await call(url, 'POST', `/images/${encodeURIComponent(baseId)}/views`, { ...r, id: viewId })
      t.equal(res.status, 201, `${c.mode} view ${JSON.stringify(r)}`)
      const d = res.body
      t.same(d, server.store.describe(viewId), 'the response schema drops nothing the store describes')
      t.equal(res.headers.get('location'), `/images/${encodeURIComponent(viewId)}`)
      t.match(d, { id: viewId, base: baseId, view: { parent: baseId, ...r }, width: r.width, height: r.height, mode: c.mode, typestr: c.typestr, copied: false, layout: 'block' })
      const ai = d.__array_interface__
      const expectedOffset = (r.y * W + r.x) * pixelBytes
      t.equal(ai.offset ?? 0, expectedOffset, 'offset points at the first ROI pixel in the base bytes')
      if (r.width === W || r.height === 1) {
        t.equal(ai.strides, null, 'full-width rows, or one row, are C-contiguous')
      } else {
        t.same(ai.strides, c.channels === 1 ? [W * pixelBytes, c.item] : [W * pixelBytes, pixelBytes, c.item])
      }
      const expected = roi(base, W, pixelBytes, r.x, r.y, r.width, r.height)
      const viewBytes = await download(url, viewId)
      t.ok(Buffer.from(viewBytes.bytes).equals(expected), 'view download is the compact ROI')
      t.equal(viewBytes.headers.get('x-pixelport-shape'), d.shape.join(','))
      // What a remote numpy client does: base bytes + the view's strides and offset.
      const baseBytes = (await download(url, d.base)).bytes
      const strides = ai.strides ?? (c.channels === 1 ? [r.width * pixelBytes, c.item] : [r.width * pixelBytes, pixelBytes, c.item])
      t.ok(Buffer.from(stridedCopy(baseBytes, ai.shape, strides, ai.offset ?? 0, c.item)).equals(expected), 'strides + offset rebuild the ROI')
    }
  }
})

t.test('views share memory and generation with their base', async (t) => {
  const { url } = await startServer(t)
  const W = 8
  const H = 6
  await upload(url, { width: W, height: H, mode: 'L', id: 'img' }, new Uint8Array(W * H))
  const view = await call(url, 'POST', '/images/img/views', { x: 2, y: 1, width: 3, height: 2, id: 'img/roi' })
  t.equal(view.status, 201)
  // Writing through the view changes the base, in place.
  const patch = Uint8Array.from([1, 2, 3, 4, 5, 6])
  const written = await put(url, 'img/roi', patch)
  t.equal(written.status, 200)
  t.equal(written.body.generation, 1)
  const base = (await download(url, 'img')).bytes
  t.same([...base.subarray(W + 2, W + 5)], [1, 2, 3])
  t.same([...base.subarray(2 * W + 2, 2 * W + 5)], [4, 5, 6])
  t.equal(base.reduce((a, b) => a + b, 0), 21, 'nothing outside the ROI changed')
  t.equal((await call(url, 'GET', '/images/img')).body.generation, 1, 'the base sees the view\'s commit')
  // Writing the base is visible through the view.
  const full = randomBytes(W * H)
  await put(url, 'img', full)
  t.ok(Buffer.from((await download(url, 'img/roi')).bytes).equals(Buffer.from(roi(full, W, 1, 2, 1, 3, 2))))
  // A view of a view is a view of the root, offsets composed.
  const nested = await call(url, 'POST', '/images/img%2Froi/views', { x: 1, y: 1, width: 2, height: 1, id: 'nested' })
  t.equal(nested.status, 201)
  t.match(nested.body, { base: 'img', view: { parent: 'img', x: 3, y: 2, width: 2, height: 1 } })
  t.ok(Buffer.from((await download(url, 'nested')).bytes).equals(Buffer.from(roi(full, W, 1, 3, 2, 2, 1))))
  // A read-only view refuses writes; the base does not.
  await call(url, 'POST', '/images/img/views', { x: 0, y: 0, width: 2, height: 2, id: 'ro', readonly: true })
  const refused = await put(url, 'ro', new Uint8Array(4))
  t.equal(refused.status, 409)
  t.equal(refused.body.code, 'PXP_ERR_READONLY')
  // Deleting the base deletes its views.
  t.equal((await call(url, 'DELETE', '/images/img')).status, 204)
  t.same((await call(url, 'GET', '/images')).body.images, [])
})

t.test('views that cannot be made leave the store unchanged', async (t) => {
  const { url, server } = await startServer(t)
  await call(url, 'POST', '/images', { width: 10, height: 8, mode: 'RGB', id: 'p' })
  await call(url, 'POST', '/images', { width: 10, height: 8, mode: 'RGB', id: 'lines', layout: 'lines' })
  const before = storeState(server)
  const bad: Array<[string, unknown, number, string]> = [
    ['/images/p/views', { x: 8, y: 0, width: 3, height: 1 }, 400, 'PXP_ERR_BAD_REGION'],
    ['/images/p/views', { x: 0, y: 7, width: 1, height: 2 }, 400, 'PXP_ERR_BAD_REGION'],
    ['/images/p/views', { x: 10, y: 0, width: 1, height: 1 }, 400, 'PXP_ERR_BAD_REGION'],
    ['/images/p/views', { x: -1, y: 0, width: 1, height: 1 }, 400, 'PXP_ERR_VALIDATION'],
    ['/images/p/views', { x: 0, y: 0, width: 0, height: 1 }, 400, 'PXP_ERR_VALIDATION'],
    ['/images/p/views', { x: 0, y: 0, width: 1.5, height: 1 }, 400, 'PXP_ERR_VALIDATION'],
    ['/images/p/views', { x: 0, y: 0, width: 1 }, 400, 'PXP_ERR_VALIDATION'],
    ['/images/p/views', { x: 0, y: 0, width: 1, height: 1, layout: 'block' }, 400, 'PXP_ERR_VALIDATION'],
    ['/images/p/views', { x: 0, y: 0, width: 1, height: 1, id: 'p' }, 409, 'PXP_ERR_ALREADY_EXISTS'],
    ['/images/p/views', { x: 0, y: 0, width: 1, height: 1, id: '../x' }, 400, 'PXP_ERR_BAD_ID'],
    ['/images/nope/views', { x: 0, y: 0, width: 1, height: 1 }, 404, 'PXP_ERR_NOT_FOUND'],
    ['/images/lines/views', { x: 0, y: 0, width: 1, height: 1 }, 400, 'PXP_ERR_VALIDATION'],
  ]
  for (const [path, body, status, code] of bad) {
    const res = await call(url, 'POST', path, body)
    t.equal(res.status, status, `${path} ${JSON.stringify(body)} → ${status}`)
    t.equal(res.body.code, code)
    t.type(res.body.message, 'string')
  }
  t.same(storeState(server), before)
})
