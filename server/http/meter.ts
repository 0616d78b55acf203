/**
 * Counting the pixel bytes HTTP moves, for `GET /metrics`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TransportMetrics } from '../metrics/metrics.js'

/**
 * Count `bytes` as streamed once the response has been handed to the operating system in full: a download
 * the client abandons half-way is not counted, nor is a HEAD request (no body is sent).
 */
export function meterDownload (request: FastifyRequest, reply: FastifyReply, metrics: TransportMetrics | undefined, bytes: number): void {
  if (metrics === undefined || bytes === 0 || request.method === 'HEAD') return
  reply.raw.once('finish', () => metrics.addBytesStreamed('http', bytes))
}
