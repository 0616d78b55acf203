/**
 * How route schemas become validators.
 *
 * fastify's default Ajv coerces types everywhere and silently strips properties a schema does not allow.
 * For JSON bodies we want the opposite: `"width": "640"` or a misspelt field is an error the client hears
 * about. Query strings, params and headers are text by nature, so there types are coerced.
 */
import { Ajv, type Options } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'

const base: Options = { allErrors: false, useDefaults: true, removeAdditional: false, strict: true }

/**
 * A validator compiler for one server's routes: strict JSON bodies, coerced query/params/headers. One per
 * server, because Ajv caches every schema it compiled for as long as it lives.
 */
export function createValidatorCompiler (): FastifySchemaCompiler<unknown> {
  const strictAjv = new Ajv({ ...base, coerceTypes: false })
  const coercingAjv = new Ajv({ ...base, coerceTypes: true })
  return ({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object)
}
