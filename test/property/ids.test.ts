/**
 * Image ids, by property: every id built by the documented grammar is accepted and survives URL encoding,
 * and anything else — random strings, valid ids with a hostile piece spliced in, values of other types — is
 * refused with PXP_ERR_BAD_ID and nothing else. Nothing accepted can name a path outside its namespace.
 */
import path from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { assertValidId, isValidId, MAX_ID_LENGTH } from '../../protocol/ids.js'
import { fuzzSettings, registryErrorOf } from '../helpers/fuzz.js'
import { validId } from '../helpers/arbitraries.js'

/** What must hold of every accepted id, whatever produced it. */
function assertSafe (id: string): void {
  if (id.length < 1 || id.length > MAX_ID_LENGTH) throw new Error(`length ${id.length}`)
  if (id.includes('\0') || id.includes('\\')) throw new Error('NUL or backslash')
  if (!/^[\x21-\x7e]+$/.test(id)) throw new Error('non-printable-ASCII accepted')
  if (id.startsWith('/') || id.endsWith('/') || id.includes('//')) throw new Error('empty segment')
  if (id.split('/').some((s) => s === '.' || s === '..' || s.startsWith('.'))) throw new Error('dot segment')
  // As a path under a root it stays under that root, unchanged by normalisation.
  if (path.posix.normalize(id) !== id) throw new Error('normalises to something else')
  if (!path.posix.join('/srv/root', id).startsWith('/srv/root/')) throw new Error('escapes its root')
  if (!path.win32.join('C:\\root', id).startsWith('C:\\root\\')) throw new Error('escapes a Windows root')
}

t.test('every id by the grammar is accepted, safe, and round-trips through a URL', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  fc.assert(fc.property(validId, (id) => {
    if (!isValidId(id)) throw new Error(`refused ${JSON.stringify(id)}`)
    assertValidId(id)
    assertSafe(id)
    const url = new URL(`http://h/images/${encodeURIComponent(id)}/data`)
    if (decodeURIComponent(url.pathname.split('/')[2]) !== id) throw new Error('URL round trip')
  }), { seed, numRuns: runs(1000) })
  t.pass('valid ids accepted')
})

/** Pieces that make an id hostile: traversal, separators, NUL, blanks, non-ASCII, encodings. */
const hostile = fc.constantFrom('..', '/..', '../', '/', '//', '\\', '\0', ' ', '\t', '\n', '.', '/.', 'é', '\u200b',
  '\u{1F600}', '%2e%2e', '%2f', '?', '#', '*', ':', '"', '\r\n', '\ud800')

t.test('anything else is PXP_ERR_BAD_ID, and whatever is accepted is safe', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const spliced = fc.tuple(validId, hostile, fc.nat()).map(([id, bad, at]) => {
    const i = at % (id.length + 1)
    return id.slice(0, i) + bad + id.slice(i)
  })
  const candidates = fc.oneof(
    spliced,
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('a', '.', '/', '\\', '\0', '-'), maxLength: 20 }),
    validId.map((id) => id + 'x'.repeat(MAX_ID_LENGTH + 1 - id.length)),
  )
  let refused = 0
  fc.assert(fc.property(candidates, (id) => {
    const err = registryErrorOf(() => assertValidId(id), ['PXP_ERR_BAD_ID'])
    if ((err === undefined) !== isValidId(id)) throw new Error('isValidId and assertValidId disagree')
    if (err === undefined) assertSafe(id)
    else {
      refused++
      // The message quotes the id, but never an unbounded amount of it.
      if (err.message.length > 2000) throw new Error(`message of ${err.message.length} characters`)
    }
  }), { seed, numRuns: runs(3000) })
  t.ok(refused > 0, `${refused} refused`)
})

t.test('values that are not strings are PXP_ERR_BAD_ID, never a TypeError', async (t) => {
  const { seed, runs } = fuzzSettings(t)
  const nonStrings = fc.oneof(
    fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true }),
    // Objects whose own toString/valueOf are not functions: String() of them throws.
    fc.constantFrom({ toString: 1 }, { toString: null, valueOf: null }, Object.create(null), [Object.create(null)], Symbol('x')),
  ).filter((v) => typeof v !== 'string')
  fc.assert(fc.property(nonStrings, (value) => {
    if (isValidId(value)) throw new Error('a non-string accepted')
    registryErrorOf(() => assertValidId(value), ['PXP_ERR_BAD_ID'])
  }), { seed, numRuns: runs(500) })
  t.pass('non-strings refused')
})
