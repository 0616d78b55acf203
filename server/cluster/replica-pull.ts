/**
 * Pull one consistent generation of another node's image over HTTP, in byte ranges.
 *
 * The owner's `GET /images/:id/data` serves every generation from a consistent snapshot and tags it with
 * `ETag: "<generation>"`. The first range fixes the generation; every further range is sent with
 * `If-Range` set to that tag, so the owner answers 206 only while the same generation is current. Any other
 * answer means the owner committed meanwhile: the pull starts over (latest-only: the older generation is
 * never finished). The further ranges go two at a time, so no round trip sits between two ranges. After `maxRestarts` restarts one whole-body GET is used, which is one generation by
 * construction, so a producer committing faster than ranges travel cannot starve the pull.
 *
 * Bytes go from the socket straight into the destination: undici's `request` over a keep-alive connection
 * (the peer's Pool when the caller gives one, else undici's global Agent, which keeps connections too), its
 * body read chunk by chunk into `into`. `fetch()` was the slow part here: a WHATWG stream per body and a
 * copy per chunk on top of the one into the destination; and a new connection per range without a pool.
 */
import { request as undiciRequest, type Dispatcher } from 'undici'
import { errorBodyIn, errorFromBody, pxpError } from '../../protocol/errors.js'

/** Ranges of one pull in flight at once. */
const PARALLEL_RANGES = 2

export interface PullSource {
  /** The owner's node id and base URL, and the image id there. */
  node: string
  url: string
  id: string
  /** Headers for node-to-node requests (the cluster token). */
  headers: Record<string, string>
  /** Keep-alive connections to the owner (ClusterNode.pools.for(url)); default: undici's global Agent. */
  dispatcher?: Dispatcher
}

export interface PullOptions {
  /** Bytes per Range request. */
  chunkBytes: number
  /** Restarts (the generation changed mid-pull) before one whole-body GET is used instead. */
  maxRestarts: number
}

/** One generation of the owner's image, in C order, with what the owner said it is. */
export interface Pulled {
  generation: number
  shape: number[]
  typestr: string
  bytes: Uint8Array
  /** Ranges requested (including those of abandoned attempts), for tests and metrics. */
  requests: number
  restarts: number
}

/**
 * Pull `byteLength` bytes of `source` into `into` (reused when given, e.g. a staging buffer) from one
 * generation. Errors: the owner's own error (PXP_ERR_NOT_FOUND when it deleted the image meanwhile),
 * PXP_ERR_PEER_UNREACHABLE when it did not answer, PXP_ERR_BYTE_COUNT when the image changed size.
 */
export async function pullImage (source: PullSource, byteLength: number, options: PullOptions, into?: Uint8Array): Promise<Pulled> {
  const bytes = into ?? new Uint8Array(byteLength)
  if (bytes.byteLength !== byteLength) throw pxpError('PXP_ERR_BYTE_COUNT', byteLength, bytes.byteLength)
  const dataUrl = `${source.url.replace(/\/+$/, '')}/images/${encodeURIComponent(source.id)}/data`
  const counts = { requests: 0 }
  for (let restarts = 0; ; restarts++) {
    const whole = restarts >= options.maxRestarts
    // The first range alone: its answer fixes the generation (ETag) every further range is tied to.
    const headers: Record<string, string> = { ...source.headers }
    if (!whole && byteLength > 0) headers.range = `bytes=0-${Math.min(byteLength, options.chunkBytes) - 1}`
    counts.requests++
    const res = await request(source, dataUrl, headers)
    if (res.statusCode < 200 || res.statusCode > 299) throw await ownerError(source, res)
    const etag = header(res, 'etag')
    // A 200 to a ranged first request is the whole body (an owner that ignores Range): take it all.
    const start = res.statusCode === 206 ? rangeStart(res, byteLength) : 0
    if (start !== 0) {
      res.body.destroy()
      throw pxpError('PXP_ERR_PROTOCOL', `asked for bytes from 0, the owner answered from ${start}`)
    }
    const first = {
      generation: Number(header(res, 'x-pixelport-generation') ?? NaN),
      shape: (header(res, 'x-pixelport-shape') ?? '').split(',').map(Number),
      typestr: header(res, 'x-pixelport-typestr') ?? '',
    }
    const received = await readInto(source, res, bytes, 0)
    if (received === byteLength) return { ...first, bytes, requests: counts.requests, restarts }
    // Without a tag we cannot tell generations apart: only a whole body is consistent.
    if (etag === null) continue
    if (await pullRest(source, dataUrl, etag, bytes, received, options, counts)) return { ...first, bytes, requests: counts.requests, restarts }
  }
}

/**
 * The ranges after the first, `bytes` from `from` on, all of generation `etag`, up to PARALLEL_RANGES in
 * flight (each over its own keep-alive connection of the pool): one range's request and first bytes travel
 * while another's body is read, instead of a round trip between ranges. True when every byte arrived;
 * false when the owner answered a range with another generation (the caller starts over). Every request
 * has ended, one way or the other, before this returns: nothing writes into `bytes` afterwards.
 */
async function pullRest (source: PullSource, url: string, etag: string, bytes: Uint8Array, from: number, options: PullOptions, counts: { requests: number }): Promise<boolean> {
  const byteLength = bytes.byteLength
  const queue: Array<[start: number, end: number]> = []
  for (let at = from; at < byteLength; at += options.chunkBytes) queue.push([at, Math.min(byteLength, at + options.chunkBytes) - 1])
  const stop = new AbortController()
  let changed = false
  const fetchRanges = async (): Promise<void> => {
    while (!changed && !stop.signal.aborted && queue.length > 0) {
      const [start, end] = queue.shift()!
      counts.requests++
      const res = await request(source, url, { ...source.headers, range: `bytes=${start}-${end}`, 'if-range': etag }, stop.signal)
      if (res.statusCode < 200 || res.statusCode > 299) throw await ownerError(source, res)
      if (res.statusCode !== 206 || header(res, 'etag') !== etag) {
        // A newer generation is current: drop this body unread, and stop the other ranges.
        res.body.destroy()
        changed = true
        stop.abort()
        return
      }
      const at = rangeStart(res, byteLength)
      if (at !== start) {
        res.body.destroy()
        throw pxpError('PXP_ERR_PROTOCOL', `asked for bytes from ${start}, the owner answered from ${at}`)
      }
      const received = await readInto(source, res, bytes, start)
      // A body that ended early: the rest of its range goes back in the queue.
      if (start + received <= end) queue.unshift([start + received, end])
    }
  }
  const runs = await Promise.allSettled(Array.from({ length: Math.min(PARALLEL_RANGES, queue.length) }, async () => {
    try {
      await fetchRanges()
    } catch (err) {
      // The first failure stops the others; the ones it stopped are not failures of their own.
      if (stop.signal.aborted) return
      stop.abort()
      throw err
    }
  }))
  const failed = runs.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  return !changed
}

async function request (source: PullSource, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
  try {
    // undici's `request` never follows a redirect: a 3xx is an answer like any other non-2xx (ownerError),
    // so the cluster token cannot travel to wherever it pointed.
    return await undiciRequest(url, { headers, signal, ...(source.dispatcher === undefined ? {} : { dispatcher: source.dispatcher }) })
  } catch (err) {
    throw pxpError('PXP_ERR_PEER_UNREACHABLE', source.node, source.url, source.id, String((err as Error)?.message ?? err))
  }
}

/** The owner's `{ code, message }` as our error (same code), or PXP_ERR_PEER_UNREACHABLE for anything else. */
async function ownerError (source: PullSource, res: Dispatcher.ResponseData): Promise<Error> {
  const body = errorBodyIn(await res.body.text().catch(() => ''))
  if (body !== null) return errorFromBody(body)
  return pxpError('PXP_ERR_PEER_UNREACHABLE', source.node, source.url, source.id, `HTTP ${res.statusCode}`)
}

/** One response header as a string (the first, should the owner repeat it); null when absent. */
function header (res: Dispatcher.ResponseData, name: string): string | null {
  const value = res.headers[name]
  return Array.isArray(value) ? value[0] ?? null : value ?? null
}

/** Where a 206 body starts; its total must be the size we expect (else the image was re-created). */
function rangeStart (res: Dispatcher.ResponseData, byteLength: number): number {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header(res, 'content-range') ?? '')
  if (m === null) {
    res.body.destroy()
    throw pxpError('PXP_ERR_PROTOCOL', `a 206 answer without a usable Content-Range (${header(res, 'content-range')})`)
  }
  if (Number(m[3]) !== byteLength) {
    res.body.destroy()
    throw pxpError('PXP_ERR_BYTE_COUNT', byteLength, Number(m[3]))
  }
  return Number(m[1])
}

/**
 * Copy the body into `bytes` from `start` as it arrives (no whole-body buffer); returns the bytes read.
 * 'data' events, not `for await`: no promise and no extra turn per chunk.
 */
async function readInto (source: PullSource, res: Dispatcher.ResponseData, bytes: Uint8Array, start: number): Promise<number> {
  let at = start
  try {
    await new Promise<void>((resolve, reject) => {
      res.body.on('data', (chunk: Buffer) => {
        if (at + chunk.byteLength > bytes.byteLength) {
          res.body.destroy()
          reject(pxpError('PXP_ERR_BYTE_COUNT', bytes.byteLength, at + chunk.byteLength))
          return
        }
        bytes.set(chunk, at)
        at += chunk.byteLength
      })
      res.body.once('end', resolve)
      res.body.once('error', reject)
      res.body.once('close', () => reject(new Error('the body ended early')))
    })
  } catch (err) {
    if ((err as { code?: string }).code === 'PXP_ERR_BYTE_COUNT') throw err
    throw pxpError('PXP_ERR_PEER_UNREACHABLE', source.node, source.url, source.id, String((err as Error)?.message ?? err))
  }
  return at - start
}
