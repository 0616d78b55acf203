/**
 * Self-verifying frames. Every row of a soak image (mode L, one byte a pixel) starts with the frame's
 * version and its writer's tag (two little-endian u32) and continues with bytes derived from (version, tag,
 * row, column). A reader checks every row against the first: a frame mixed from two writes (torn) or
 * corrupted anywhere is detected without knowing what was written. An all-zero frame is a freshly created,
 * never written image (version 0).
 */

/** Bytes at the start of each row: version, tag. */
const HEAD = 8

function pixel (version: number, tag: number, row: number, column: number): number {
  let x = (Math.imul(version, 0x9e3779b1) ^ Math.imul(tag + 1, 0x85ebca77) ^ Math.imul(row, 0xc2b2ae3d) ^ Math.imul(column, 0x27d4eb2f)) >>> 0
  x ^= x >>> 15
  x = Math.imul(x, 0x2c1b3c6d)
  x ^= x >>> 12
  return x & 0xff
}

/** Fill `bytes` (width × height, C order) with frame `version` of writer `tag`. */
export function writeFrame (bytes: Uint8Array, width: number, height: number, version: number, tag: number): void {
  if (width < HEAD + 1) throw new RangeError(`soak frames need width > ${HEAD}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let y = 0; y < height; y++) {
    const at = y * width
    view.setUint32(at, version, true)
    view.setUint32(at + 4, tag, true)
    for (let x = HEAD; x < width; x++) bytes[at + x] = pixel(version, tag, y, x)
  }
}

export function makeFrame (width: number, height: number, version: number, tag: number): Uint8Array {
  const bytes = new Uint8Array(width * height)
  writeFrame(bytes, width, height, version, tag)
  return bytes
}

export type FrameCheck = { ok: true, version: number, tag: number, blank: boolean } | { ok: false, reason: string }

/** Is `bytes` one whole frame? Says which version and tag, or where it is torn or corrupt. */
export function checkFrame (bytes: Uint8Array, width: number, height: number): FrameCheck {
  if (bytes.byteLength !== width * height) return { ok: false, reason: `${bytes.byteLength} bytes for ${width}x${height}` }
  if (bytes.every((b) => b === 0)) return { ok: true, version: 0, tag: 0, blank: true }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = view.getUint32(0, true)
  const tag = view.getUint32(4, true)
  for (let y = 0; y < height; y++) {
    const at = y * width
    if (view.getUint32(at, true) !== version || view.getUint32(at + 4, true) !== tag) {
      return { ok: false, reason: `torn: row ${y} is version ${view.getUint32(at, true)} of tag ${view.getUint32(at + 4, true)}, row 0 version ${version} of tag ${tag}` }
    }
    for (let x = HEAD; x < width; x++) {
      if (bytes[at + x] !== pixel(version, tag, y, x)) return { ok: false, reason: `corrupt: byte (${x}, ${y}) of version ${version} tag ${tag}` }
    }
  }
  return { ok: true, version, tag, blank: false }
}
