/**
 * The error registry: every code complete and consistent, errors that survive crossing a thread, and
 * every code documented for users.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { ERRORS, RETIRED_CODES, errorBodyIn, errorFromBody, isPixelportError, PixelportError, pxpError, type ErrorCode } from '../../protocol/errors.js'
import { ROOT } from '../helpers/paths.js'

const root = pathToFileURL(ROOT + '/')
const codes = Object.keys(ERRORS) as ErrorCode[]

t.test('every code has a status, a close code and a message', async (t) => {
  for (const code of codes) {
    const spec = ERRORS[code]
    t.match(code, /^PXP_ERR_[A-Z]+(_[A-Z]+)*$/)
    t.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${code} status ${spec.status}`)
    // Close codes a server may send: the standard ones that mean an error, or the application range.
    t.ok([1001, 1002, 1003, 1007, 1008, 1009, 1011].includes(spec.closeCode) || (spec.closeCode >= 4000 && spec.closeCode <= 4999), `${code} close code ${spec.closeCode}`)
    t.ok(typeof spec.message === 'string' && spec.message.length > 0, `${code} message`)
  }
})

t.test('pxpError fills the template; errors survive structured clone by code', async (t) => {
  const err = pxpError('PXP_ERR_NOT_FOUND', 'cam/1')
  t.type(err, PixelportError)
  t.type(err, Error)
  t.equal(err.code, 'PXP_ERR_NOT_FOUND')
  t.equal(err.status, 404)
  t.equal(err.message, 'Image "cam/1" not found', 'strings are quoted so an id cannot forge a message')
  t.equal(err.name, 'PixelportError')
  t.same(err.toJSON(), { code: 'PXP_ERR_NOT_FOUND', message: 'Image "cam/1" not found' })
  t.equal(pxpError('PXP_ERR_CAPACITY', 10, 20, 30).message, 'Not enough memory for 10 bytes: 20 of 30 bytes capacity in use')
  t.match(pxpError('PXP_ERR_CAPACITY').message, /undefined/, 'missing arguments do not throw')
  const withDetails = new PixelportError('PXP_ERR_VALIDATION', 'x', { field: 'width' })
  t.same(withDetails.toJSON(), { code: 'PXP_ERR_VALIDATION', message: 'x', details: { field: 'width' } })
  // Structured clone of an Error drops `code` (and the class): errors cross threads as their JSON body.
  t.notOk(isPixelportError(structuredClone(err)), 'a cloned Error has lost its code')
  const body = structuredClone(err.toJSON())
  t.ok(isPixelportError(body), 'the body keeps it')
  const rebuilt = errorFromBody(body)
  t.type(rebuilt, PixelportError)
  t.match(rebuilt, { code: 'PXP_ERR_NOT_FOUND', status: 404, message: err.message })
  t.equal(errorFromBody({ code: 'EVIL', message: 'm' }).code, 'PXP_ERR_INTERNAL', 'unknown codes become INTERNAL')
  t.equal(errorFromBody({ code: 'toString', message: 'm' }).code, 'PXP_ERR_INTERNAL', 'inherited property names are not codes')
  for (const v of [null, undefined, 'PXP_ERR_NOT_FOUND', {}, { code: 'EVIL' }, { code: 'hasOwnProperty' }, { code: 1 }]) {
    t.notOk(isPixelportError(v), JSON.stringify(v) ?? 'undefined')
  }
})

t.test('every error code is documented in README.md or docs/*.md', async (t) => {
  const files = [new URL('README.md', root)]
  const docs = new URL('docs/', root)
  if (existsSync(docs)) for (const f of readdirSync(docs)) if (f.endsWith('.md')) files.push(new URL(f, docs))
  const text = files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n')
  const documented = new Set(text.match(/PXP_ERR_[A-Z_]+/g) ?? [])
  const missing = codes.filter((c) => !documented.has(c))
  t.same(missing, [], `codes missing from the docs: ${missing.join(', ') || 'none'}`)
  const stale = [...documented].filter((c) => !(c in ERRORS) && !(c in RETIRED_CODES))
  t.same(stale, [], `documented codes that do not exist: ${stale.join(', ') || 'none'}`)
})

t.test('a retired code is no longer in the registry, and the docs name what replaced it', async (t) => {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const protocol = readFileSync(new URL('docs/protocol.md', root), 'utf8')
  for (const [old, replacements] of Object.entries(RETIRED_CODES)) {
    t.notOk(old in ERRORS, `${old} is retired`)
    t.ok(replacements.length > 0 && replacements.every((c) => c in ERRORS), `${old} has live replacements`)
    for (const text of [readme, protocol]) {
      const line = text.split('\n').find((l) => l.includes(old) && replacements.every((c) => l.includes(c)))
      t.ok(line, `one line of the docs names ${old} and each of ${replacements.join(', ')}`)
    }
  }
})

t.test('errorBodyIn: the one parser of error bodies in HTTP answers', async (t) => {
  t.same(errorBodyIn('{"code":"PXP_ERR_NOT_FOUND","message":"no image x"}'), { code: 'PXP_ERR_NOT_FOUND', message: 'no image x', details: undefined })
  t.same(errorBodyIn('{"code":"PXP_ERR_VALIDATION","message":"m","details":{"field":"w"}}')?.details, { field: 'w' })
  for (const text of ['', '<html>502 Bad Gateway</html>', 'null', '[]', '{"code":1,"message":"m"}', '{"code":"X"}', '{"message":"m"}']) {
    t.equal(errorBodyIn(text), null, `not an error body: ${JSON.stringify(text)}`)
  }
  t.equal(errorFromBody(errorBodyIn('{"code":"PXP_ERR_MADE_UP","message":"m"}')!).code, 'PXP_ERR_INTERNAL', 'an unknown code is not trusted')
})
