/**
 * An HTTP upload's ticket (server/uploads): its share of the staging budget and its clocks, taken before
 * the route reads a byte of the body and given back however the request ends.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from '../context.js'
import { uploadsOf, type UploadTicket } from '../uploads/registry.js'
import { isRetryable } from '../uploads/staging-budget.js'

/**
 * Run `upload` with a ticket holding `bytes` of staging (0 when the body's length is unknown: it grows as
 * the body arrives). A full budget refuses with 503 PXP_ERR_STAGING_FULL and `Retry-After` before anything
 * is read; the ticket ends (its bytes are given back) when `upload` settles, whatever it did.
 */
export async function withUploadTicket<T> (
  ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, bytes: number, upload: (ticket: UploadTicket) => Promise<T>,
): Promise<T> {
  let ticket: UploadTicket
  try {
    ticket = uploadsOf(ctx).begin({ transport: 'http', what: `${request.method} ${request.url.split('?')[0]}`, client: request.ip, bytes }, bytes)
  } catch (err) {
    if (isRetryable(err)) void reply.header('retry-after', '1')
    throw err
  }
  try {
    return await upload(ticket)
  } finally {
    ticket.end()
  }
}
