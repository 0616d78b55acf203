/**
 * A few still images so a newcomer sees something at once: one per kind of thing Pixelport holds.
 */
import type { ImageStore } from '../../server/store/image-store.js'

export function addDemoImages (store: ImageStore): void {
  const w = 256
  const h = 256
  const rgb = new Uint8Array(w * h * 3)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3
      rgb[i] = x
      rgb[i + 1] = y
      rgb[i + 2] = 255 - x
    }
  }
  store.create({ id: 'demo/gradient', width: w, height: h, mode: 'RGB' }, rgb)
  store.createView('demo/gradient', { id: 'demo/gradient/center', x: 64, y: 64, width: 128, height: 128 })

  const depth = new Uint16Array(w * h)
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) depth[y * w + x] = Math.round(65535 * Math.hypot(x - w / 2, y - h / 2) / Math.hypot(w / 2, h / 2))
  store.create({ id: 'demo/depth16', width: w, height: h, mode: 'I;16' }, new Uint8Array(depth.buffer))

  const gray = new Uint8Array(w * h)
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) gray[y * w + x] = ((x >> 5) + (y >> 5)) % 2 === 0 ? 230 : 30
  store.create({ id: 'demo/checker-lines', width: w, height: h, mode: 'L', layout: 'lines' }, gray)
}
