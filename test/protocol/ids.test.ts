/**
 * Image ids: what is accepted, and that nothing accepted can escape a path or a shared-memory name.
 */
import t from 'tap'
import fc from 'fast-check'
import { assertValidId, isValidId, MAX_ID_LENGTH } from '../../protocol/ids.js'

t.test('good ids', async (t) => {
  for (const id of ['a', 'A', '0', '_', '-', 'img-01', 'cam1/frame_0001.raw', 'a/b/c', 'a.', 'a..b', 'x'.repeat(MAX_ID_LENGTH), 'A-Z_a.z-0.9']) {
    t.ok(isValidId(id), id)
    t.doesNotThrow(() => assertValidId(id))
  }
})

t.test('hostile and malformed ids', async (t) => {
  const bad: unknown[] = [
    '', '.', '..', '../x', 'a/../b', 'a/..', './a', 'a/./b', '/a', 'a/', '/', 'a//b', '//a',
    '.hidden', 'a/.b', 'x'.repeat(MAX_ID_LENGTH + 1), 'é', 'caf\u00e9', '日本', 'a\u200bb', '\u{1F600}',
    'a b', ' a', 'a\tb', 'a\nb', 'a\n', 'a\0', 'a\\b', '..\\x', 'C:x', '%2e%2e', 'a?b', 'a#b', 'a*', 'a"b', '<a>',
    null, undefined, 1, {}, ['a'], new String('a'),
  ]
  for (const id of bad) {
    const name = typeof id === 'string' ? JSON.stringify(id.length > 20 ? id.slice(0, 20) + '…' : id) : String(id)
    t.notOk(isValidId(id), name)
    t.throws(() => assertValidId(id), { code: 'PXP_ERR_BAD_ID' }, name)
  }
})

t.test('the error message quotes the id, cut to a sane length', async (t) => {
  const err = (() => { try { assertValidId('y'.repeat(5000)) } catch (e) { return e as Error } })()
  t.ok(err !== undefined && err.message.length < 500)
  t.match(err?.message, /Invalid image id "y+"/)
})

t.test('whatever is accepted is safe', async (t) => {
  const pieces = fc.constantFrom('a', 'Z', '9', '_', '-', '.', '..', '/', '//', 'é', ' ', '\\', '\0', '%')
  const candidates = fc.oneof(
    fc.array(pieces, { maxLength: 40 }).map((p) => p.join('')),
    fc.string({ unit: 'binary', maxLength: 140 }),
  )
  fc.assert(fc.property(candidates, (id) => {
    if (!isValidId(id)) return
    if (id.length < 1 || id.length > MAX_ID_LENGTH) throw new Error(`length ${id.length}`)
    if (!/^[\x21-\x7e]+$/.test(id)) throw new Error('non-printable-ASCII accepted')
    if (id.startsWith('/') || id.endsWith('/')) throw new Error('leading or trailing /')
    for (const seg of id.split('/')) {
      if (seg === '' || seg.startsWith('.')) throw new Error(`segment ${JSON.stringify(seg)}`)
      if (!/^[A-Za-z0-9._-]+$/.test(seg)) throw new Error(`segment ${JSON.stringify(seg)}`)
    }
  }), { numRuns: 1000 })
  t.pass('1000 candidates')
})
