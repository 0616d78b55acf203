/**
 * One place that turns any failure into `{ code, message }` with the registry's HTTP status.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERRORS, isPixelportError, pxpError, type ErrorBody, type ErrorCode } from '../../protocol/errors.js'
import { unencodedIdHint } from './id-hint.js'
import { validationMessage } from './validation-messages.js'

/** The media types a route's body schema declares (`content`), else JSON when it has a body schema. */
function acceptedTypes (request: FastifyRequest): string {
  const body = (request.routeOptions.schema as { body?: { content?: Record<string, unknown> } } | undefined)?.body
  if (body === undefined) return 'none (this route takes no body)'
  return body.content === undefined ? 'application/json' : Object.keys(body.content).join(', ')
}

/** 4xx statuses other plugins use that have a registry code of their own (by `translate`). */
const CLIENT_ERROR_BY_STATUS = new Map<number, ErrorCode>([
  [401, 'PXP_ERR_UNAUTHORIZED'],
  [403, 'PXP_ERR_FORBIDDEN'],
  [404, 'PXP_ERR_ROUTE_NOT_FOUND'],
])

/** Map fastify's own error codes onto ours, so clients see one vocabulary. */
function translate (err: FastifyError, request: FastifyRequest): ErrorBody & { status: number } {
  if (isPixelportError(err)) {
    return { code: err.code, message: err.message, status: ERRORS[err.code].status }
  }
  if (err.validation !== undefined) {
    const message = validationMessage(request, err.validation, err.validationContext ?? 'request')
    return { code: 'PXP_ERR_VALIDATION', message: pxpError('PXP_ERR_VALIDATION', message).message, status: 400 }
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'PXP_ERR_BODY_TOO_LARGE', message: 'Request body exceeds the configured limit', status: 413 }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { ...pxpError('PXP_ERR_UNSUPPORTED_MEDIA_TYPE', request.headers['content-type'] ?? '(none)', `${request.method} ${request.url.split('?')[0]}`, acceptedTypes(request)).toJSON(), status: 415 }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'PXP_ERR_BAD_REQUEST', message: `Bad request: ${err.message}`, status: 400 }
  }
  if (err instanceof SyntaxError || err.statusCode === 400) {
    return { code: 'PXP_ERR_BAD_REQUEST', message: `Bad request: ${err.message}`, status: 400 }
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    // Other plugins' refusals (e.g. @fastify/static's 403 for a path that climbs out of its root): the
    // registry code for that status, so code and status always agree; anything else is a 400.
    const code = CLIENT_ERROR_BY_STATUS.get(err.statusCode) ?? 'PXP_ERR_BAD_REQUEST'
    const message = code === 'PXP_ERR_ROUTE_NOT_FOUND' ? `${request.method} ${request.url.split('?')[0]}` : err.message
    return { code, message: pxpError(code, message).message, status: ERRORS[code].status }
  }
  return { code: 'PXP_ERR_INTERNAL', message: 'Internal error', status: 500 }
}

export function installErrorHandler (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, ...body } = translate(err, request)
    if (status >= 500) request.log.error({ err }, 'request failed')
    void reply.code(status).type('application/json').send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]
    void reply.code(404).send(pxpError('PXP_ERR_ROUTE_NOT_FOUND', `${request.method} ${path}${unencodedIdHint(request.method, path)}`).toJSON())
  })
}

/**
 * fastify's `frameworkErrors` option: the router's own refusals, which bypass the error handler, in our
 * vocabulary. Under /images/ the only path parameter is an id, so an undecodable or over-long one is a
 * malformed id.
 */
export function frameworkErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0]
  const error = path.startsWith('/images/')
    ? pxpError('PXP_ERR_BAD_ID', path.slice('/images/'.length).split('/')[0].slice(0, 200))
    : pxpError('PXP_ERR_BAD_REQUEST', `${err.message}`)
  void reply.code(error.status).type('application/json').send(error.toJSON())
}
