/**
 * fastify/Ajv validation errors as messages a person can act on: the field by name, and what it may be
 * (the allowed fields, the allowed values, what a typestr is), like the WebSocket validator's.
 */
import type { FastifyRequest, FastifySchemaValidationError } from 'fastify'
import { TYPESTR_HELP } from '../../protocol/dtypes.js'
import { MAX_NDIM } from '../../protocol/layout.js'

type Schema = { properties?: Record<string, unknown>, content?: Record<string, { schema?: Schema }> } | undefined

/** The top-level properties a route's schema for `context` (body, querystring, params) allows. */
function allowedFields (request: FastifyRequest, context: string): string[] {
  const schemas = request.routeOptions.schema as Record<string, Schema> | undefined
  let schema = schemas?.[context]
  if (schema?.content !== undefined) schema = schema.content['application/json']?.schema
  return Object.keys(schema?.properties ?? {})
}

const shown = (value: unknown): string => JSON.stringify(value) ?? String(value)

/** `body/typestr must …` for the first validation error of a request. */
export function validationMessage (request: FastifyRequest, errors: FastifySchemaValidationError[], context: string): string {
  const e = errors[0]
  if (e === undefined) return `${context} is invalid`
  const field = e.instancePath === '' ? '' : e.instancePath.slice(1)
  const where = field === '' ? context : `${context}/${field}`
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = field === '' ? allowedFields(request, context) : []
      return `unknown field ${shown(params.additionalProperty)} in ${where}` + (allowed.length > 0 ? `; allowed fields: ${allowed.join(', ')}` : '')
    }
    case 'enum':
      return `${where} must be one of ${(params.allowedValues as unknown[]).map(shown).join(', ')}`
    case 'required':
      return `${where} needs the field ${shown(params.missingProperty)}`
  }
  if (/(^|\/)typestr$/.test(field)) return `${where} must be a numpy typestr: ${TYPESTR_HELP}`
  if (field === 'shape' && e.keyword === 'pattern') return `${where} must be 1 to ${MAX_NDIM} dimensions separated by commas, e.g. 480,640,3`
  return `${where} ${e.message ?? 'is invalid'}`
}
