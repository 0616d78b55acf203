/**
 * A strict pre-pass over MessagePack bytes, run before msgpackr builds the value.
 *
 * msgpackr decodes more than this protocol allows: it turns a timestamp extension (type -1) into a Date,
 * its own extension types into typed arrays, sets or errors (a typed-array ext even passes as `bin`), and
 * a float 4.0 into the number 4, indistinguishable from an int afterwards. None of that can be switched
 * off per decoder, so the bytes are walked first: any extension type, 0xc1, truncation, trailing bytes
 * or nesting deeper than MAX_NESTING is refused, and the first float's position is reported (the
 * protocol has no float fields: a whole-number float where a uint is expected must be refused too).
 *
 * The walk touches each MessagePack token once and skips `bin`/`str` payloads, so a 1 MiB chunk costs a
 * few dozen steps.
 */
import { pxpError } from './errors.js'

/** Deepest nesting of maps and arrays accepted; the message's own map is level 1. */
export const MAX_NESTING = 16

export interface ScanResult {
  /** Where the first float is (`width`, `region.x`, `ids.0`), or null when there is none. */
  floatPath: string | null
}

const keyDecoder = new TextDecoder('utf-8', { fatal: false })

class Walker {
  private pos = 0
  floatPath: string | null = null
  private readonly path: Array<string | number> = []

  constructor (private readonly bytes: Uint8Array) {}

  scan (): ScanResult {
    this.value(1)
    if (this.pos !== this.bytes.byteLength) fail(`${this.bytes.byteLength - this.pos} trailing bytes after the message`)
    return { floatPath: this.floatPath }
  }

  private need (n: number): void {
    if (this.pos + n > this.bytes.byteLength) fail('truncated message')
  }

  private uint (n: 1 | 2 | 4): number {
    this.need(n)
    const b = this.bytes
    const p = this.pos
    this.pos += n
    if (n === 1) return b[p]
    if (n === 2) return (b[p] << 8) | b[p + 1]
    return ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3]
  }

  private skip (n: number): void {
    this.need(n)
    this.pos += n
  }

  /** Read one value; `depth` is the nesting level a map or array read here would be at. */
  private value (depth: number): void {
    this.need(1)
    const t = this.bytes[this.pos++]
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return
    if (t >= 0x80 && t <= 0x8f) return this.map(t & 0x0f, depth)
    if (t >= 0x90 && t <= 0x9f) return this.array(t & 0x0f, depth)
    if (t >= 0xa0 && t <= 0xbf) return this.skip(t & 0x1f)
    switch (t) {
      case 0xc4: return this.skip(this.uint(1))
      case 0xc5: return this.skip(this.uint(2))
      case 0xc6: return this.skip(this.uint(4))
      case 0xca: this.float(); return this.skip(4)
      case 0xcb: this.float(); return this.skip(8)
      case 0xcc: case 0xd0: return this.skip(1)
      case 0xcd: case 0xd1: return this.skip(2)
      case 0xce: case 0xd2: return this.skip(4)
      case 0xcf: case 0xd3: return this.skip(8)
      case 0xd9: return this.skip(this.uint(1))
      case 0xda: return this.skip(this.uint(2))
      case 0xdb: return this.skip(this.uint(4))
      case 0xdc: return this.array(this.uint(2), depth)
      case 0xdd: return this.array(this.uint(4), depth)
      case 0xde: return this.map(this.uint(2), depth)
      case 0xdf: return this.map(this.uint(4), depth)
      case 0xc1: return fail('the never-used byte 0xc1')
      default: return this.extension(t)
    }
  }

  /** 0xc7-0xc9 and 0xd4-0xd8: extension types, none of which is part of the protocol (timestamps included). */
  private extension (t: number): never {
    let type: number | undefined
    if (t >= 0xd4 && t <= 0xd8) type = this.bytes[this.pos]
    else if (t >= 0xc7 && t <= 0xc9) type = this.bytes[this.pos + (t === 0xc7 ? 1 : t === 0xc8 ? 2 : 4)]
    const signed = type === undefined ? '?' : String(type > 127 ? type - 256 : type)
    fail(`extension type ${signed}${signed === '-1' ? ' (timestamp)' : ''}: no extension type is part of the protocol`)
  }

  private float (): void {
    if (this.floatPath !== null) return
    this.floatPath = this.path.length === 0 ? 'message' : this.path.join('.')
  }

  private array (count: number, depth: number): void {
    this.nest(count, depth)
    for (let i = 0; i < count; i++) {
      this.path.push(i)
      this.value(depth + 1)
      this.path.pop()
    }
  }

  private map (count: number, depth: number): void {
    this.nest(2 * count, depth)
    for (let i = 0; i < count; i++) {
      const keyAt = this.pos
      this.value(depth + 1)
      this.path.push(this.keyName(keyAt))
      this.value(depth + 1)
      this.path.pop()
    }
  }

  private nest (items: number, depth: number): void {
    if (depth > MAX_NESTING) fail(`nesting deeper than ${MAX_NESTING} levels of maps and arrays`)
    // Every item takes at least one byte: a count beyond what is left is a truncated message.
    if (items > this.bytes.byteLength - this.pos) fail('truncated message')
  }

  /** A readable name for the key that starts at `at` (only used to name a field in an error). */
  private keyName (at: number): string {
    const t = this.bytes[at]
    if (t >= 0xa0 && t <= 0xbf) return keyDecoder.decode(this.bytes.subarray(at + 1, at + 1 + Math.min(t & 0x1f, 64)))
    if (t === 0xd9) return keyDecoder.decode(this.bytes.subarray(at + 2, at + 2 + Math.min(this.bytes[at + 1], 64)))
    return '?'
  }
}

function fail (what: string): never {
  throw pxpError('PXP_ERR_PROTOCOL', `not a valid message: ${what}`)
}

/**
 * Check that `bytes` are exactly one MessagePack value of the kinds the protocol uses. Throws
 * PXP_ERR_PROTOCOL otherwise; reports where the first float is.
 */
export function scanMessagePack (bytes: Uint8Array): ScanResult {
  return new Walker(bytes).scan()
}
