/**
 * How route schemas become validators.
 *
 * fastify's default Ajv coerces types everywhere and silently strips properties a schema does not allow.
 * For JSON bodies we want the opposite: `"width": "640"` or a misspelt field is an error the client hears
 * about. Query strings, params and headers are text by nature, so there types are coerced.
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'

const base: Options = { allErrors: false, useDefaults: true, removeAdditional: false, strict: true }

/** Validators by part and schema text, shared by every server in the process. */
const compiled = new Map<string, ValidateFunction>()
let strictAjv: Ajv | null = null
let coercingAjv: Ajv | null = null

/**
 * The validator compiler for a server's routes: strict JSON bodies, coerced query/params/headers. The two
 * Ajv instances and their validators are shared by every server in the process: fastify hands each instance
 * its own copies of the route schemas, but their text repeats, and our schemas are constants, so the cache
 * is bounded by the routes there are. (Compiling them anew cost each server tens of milliseconds.)
 */
export function createValidatorCompiler (): FastifySchemaCompiler<unknown> {
  return ({ schema, httpPart }) => {
    const body = httpPart === 'body'
    const key = `${body ? 'body' : 'coerced'}\0${JSON.stringify(schema)}`
    let validate = compiled.get(key)
    if (validate === undefined) {
      const ajv = body ? (strictAjv ??= new Ajv({ ...base, coerceTypes: false })) : (coercingAjv ??= new Ajv({ ...base, coerceTypes: true }))
      compiled.set(key, validate = ajv.compile(schema as object))
    }
    return validate
  }
}
