/**
 * numpy `typestr` ↔ TypedArray ↔ item size.
 *
 * A typestr is `<` (little-endian), `>` (big-endian) or `|` (not applicable) followed by a kind letter
 * and an item size in bytes, exactly as numpy's array interface spells it. Every dtype also has a small
 * numeric `code` so it fits in one shared-memory control word (see layout.ts).
 */
import { pxpError } from './errors.js'

export type TypedArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array

export interface TypedArrayConstructor<T extends TypedArray = TypedArray> {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T
  new (length: number): T
  readonly BYTES_PER_ELEMENT: number
}

export interface DType {
  /** numpy typestr, e.g. `<u2`. */
  readonly typestr: string
  /** Stable small integer stored in shared control words. Never renumber. */
  readonly code: number
  readonly kind: 'b' | 'u' | 'i' | 'f'
  readonly itemSize: number
  /** `true` for `<`, `false` for `>`, `null` for single-byte types. */
  readonly littleEndian: boolean | null
  /**
   * The TypedArray that views this dtype in host (little-endian) order. Big-endian dtypes have no such
   * view: they are exposed as raw bytes (Uint8Array) and `native` is false.
   */
  readonly array: TypedArrayConstructor
  readonly native: boolean
}

function dtype (typestr: string, code: number, array: TypedArrayConstructor, native = true): DType {
  const kind = typestr[1] as DType['kind']
  const order = typestr[0]
  return Object.freeze({
    typestr,
    code,
    kind,
    itemSize: Number(typestr.slice(2)),
    littleEndian: order === '|' ? null : order === '<',
    array: native ? array : Uint8Array as TypedArrayConstructor,
    native,
  })
}

const TABLE: readonly DType[] = [
  dtype('|u1', 1, Uint8Array),
  dtype('|i1', 2, Int8Array),
  dtype('|b1', 3, Uint8Array),
  dtype('<u2', 4, Uint16Array),
  dtype('<i2', 5, Int16Array),
  dtype('<u4', 6, Uint32Array),
  dtype('<i4', 7, Int32Array),
  dtype('<f4', 8, Float32Array),
  dtype('<f8', 9, Float64Array),
  dtype('<u8', 10, BigUint64Array as unknown as TypedArrayConstructor),
  dtype('<i8', 11, BigInt64Array as unknown as TypedArrayConstructor),
  dtype('>u2', 12, Uint16Array, false),
  dtype('>i2', 13, Int16Array, false),
  dtype('>u4', 14, Uint32Array, false),
  dtype('>i4', 15, Int32Array, false),
  dtype('>f4', 16, Float32Array, false),
  dtype('>f8', 17, Float64Array, false),
  // float16: Node 20 has no Float16Array, so the view is the raw IEEE 754 half bits as Uint16Array
  // (halfToNumber reads one); numpy's float16 on the other side.
  dtype('<f2', 18, Uint16Array),
]

const BY_TYPESTR = new Map(TABLE.map((d) => [d.typestr, d]))
const BY_CODE = new Map(TABLE.map((d) => [d.code, d]))

/** Every supported dtype, in code order. */
export const DTYPES: readonly DType[] = TABLE

/** Largest item size: every allocation is aligned to this so any dtype view is legal. */
export const MAX_ITEM_SIZE = 8

/**
 * Accept numpy's spellings: `u1` and `=u1` mean native order (little-endian here), `<u1` is the same as
 * `|u1` for single-byte types.
 */
export function normalizeTypestr (typestr: string): string {
  if (typeof typestr !== 'string' || typestr.length < 2 || typestr.length > 4) return String(typestr)
  let t = typestr
  if (t[0] === '=') t = '<' + t.slice(1)
  if (t[0] !== '<' && t[0] !== '>' && t[0] !== '|') t = '<' + t
  if (t.endsWith('1')) t = '|' + t.slice(1)
  // numpy reads '|' on a multi-byte type as native order, which is little-endian on every host we run on.
  else if (t[0] === '|') t = '<' + t.slice(1)
  return t
}

/** The value of one IEEE 754 half-precision number, from its 16 bits (a `<f2` element as the Uint16Array view holds it). */
export function halfToNumber (bits: number): number {
  const sign = (bits & 0x8000) !== 0 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/** What a typestr is, for every message about one (PXP_ERR_BAD_DTYPE, HTTP validation). */
export const TYPESTR_HELP = 'byte order (< little, > big, | not applicable), kind (u unsigned, i signed, ' +
  `f float, b bool) and item size in bytes, e.g. "<f4" or "|u1"; supported: ${TABLE.map((d) => d.typestr).join(' ')}`

/** Look up a dtype by typestr; throws PXP_ERR_BAD_DTYPE for anything unsupported. */
export function dtypeOf (typestr: string): DType {
  const found = BY_TYPESTR.get(normalizeTypestr(typestr))
  if (found === undefined) throw pxpError('PXP_ERR_BAD_DTYPE', typestr, TYPESTR_HELP)
  return found
}

export function dtypeByCode (code: number): DType {
  const found = BY_CODE.get(code)
  if (found === undefined) throw pxpError('PXP_ERR_BAD_DTYPE', `code ${code}`, TYPESTR_HELP)
  return found
}

export function isTypestr (typestr: unknown): boolean {
  return typeof typestr === 'string' && BY_TYPESTR.has(normalizeTypestr(typestr))
}
