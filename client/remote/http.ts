/**
 * HTTP helpers for remote clients: descriptors and downloads with nothing but `fetch` (Node.js 18+ and
 * browsers). Errors are PixelportErrors with the server's code.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { errorFromBody, pxpError, type PixelportError } from '../../protocol/errors.js'
import { typedView } from './frames.js'

export interface HttpOptions {
  signal?: AbortSignal
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>
  /** A fetch implementation to use instead of the global one. */
  fetch?: typeof fetch
}

export interface Download {
  /** The image, with `generation` set to the generation of these bytes. */
  descriptor: ImageDescriptor
  generation: number
  bytes: Uint8Array
  /** `bytes` as a TypedArray of the image's dtype. */
  data: TypedArray
}

/** The URL of an image (or of its `/data`, `.png`, … with `suffix`): ids hold '/', which travels percent-encoded. */
export function imageUrl (baseUrl: string, id: string, suffix = ''): string {
  return `${baseUrl.replace(/\/+$/, '')}/images/${encodeURIComponent(id)}${suffix}`
}

async function call (url: string, options: HttpOptions): Promise<Response> {
  const doFetch = options.fetch ?? fetch
  let res: Response
  try {
    res = await doFetch(url, { signal: options.signal, headers: options.headers })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw pxpError('PXP_ERR_ABORTED', `GET ${url}`)
    throw pxpError('PXP_ERR_CLOSED', `connection to ${url} (${(err as Error).message})`)
  }
  if (!res.ok) throw await errorOf(res)
  return res
}

async function errorOf (res: Response): Promise<PixelportError> {
  try {
    const body = await res.json() as { code?: unknown, message?: unknown }
    if (typeof body.code === 'string' && typeof body.message === 'string') return errorFromBody({ code: body.code, message: body.message })
  } catch {
    // Not a Pixelport error body: describe the status instead.
  }
  return pxpError(res.status === 404 ? 'PXP_ERR_ROUTE_NOT_FOUND' : 'PXP_ERR_INTERNAL', `HTTP ${res.status} from ${res.url}`)
}

/** `GET /images/:id`: the descriptor of one image. */
export async function fetchDescriptor (baseUrl: string, id: string, options: HttpOptions = {}): Promise<ImageDescriptor> {
  return await (await call(imageUrl(baseUrl, id), options)).json() as ImageDescriptor
}

/** `GET /images`: every descriptor, following the pages' `next` cursors to the end. */
export async function fetchList (baseUrl: string, options: HttpOptions = {}): Promise<ImageDescriptor[]> {
  const all: ImageDescriptor[] = []
  let cursor: string | null = null
  for (;;) {
    const query = cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`
    const res = await call(`${baseUrl.replace(/\/+$/, '')}/images${query}`, options)
    const body = await res.json() as ImageDescriptor[] | { images: ImageDescriptor[], next?: string | null }
    if (Array.isArray(body)) return body
    all.push(...body.images)
    // A server from before paging sends no `next`: its one reply is everything.
    if (body.next == null) return all
    cursor = body.next
  }
}

/**
 * `GET /images/:id/data` (one consistent generation) with its descriptor: `{ descriptor, data, bytes }`.
 * The descriptor is fetched alongside and stamped with the generation the bytes are; if the image was
 * replaced by another of the same id in between (a different shape), both are fetched again.
 */
export async function download (baseUrl: string, id: string, options: HttpOptions = {}): Promise<Download> {
  for (let attempt = 0; ; attempt++) {
    const [descriptor, res] = await Promise.all([fetchDescriptor(baseUrl, id, options), call(imageUrl(baseUrl, id, '/data'), options)])
    const bytes = new Uint8Array(await res.arrayBuffer())
    const shape = res.headers.get('x-pixelport-shape')
    const typestr = res.headers.get('x-pixelport-typestr')
    const sameImage = (shape === null || shape === descriptor.shape.join(',')) && (typestr === null || typestr === descriptor.typestr) &&
      bytes.byteLength === descriptor.byteLength
    if (!sameImage) {
      if (attempt < 2) continue
      throw pxpError('PXP_ERR_BYTE_COUNT', descriptor.byteLength, bytes.byteLength)
    }
    const header = res.headers.get('x-pixelport-generation')
    const generation = header !== null && /^\d+$/.test(header) ? Number(header) : descriptor.generation
    return { descriptor: { ...descriptor, generation }, generation, bytes, data: typedView(descriptor.typestr, bytes) }
  }
}

export interface RequestOptions extends HttpOptions {
  /** Default GET. */
  method?: string
  /**
   * The request body: bytes, a string, or a stream (a web ReadableStream, or an async iterable of bytes such
   * as a Node.js Readable), sent as it is read. Give a `content-length` header with a stream whose size is
   * known: the server can then refuse before the body (507, 413).
   */
  body?: RequestInit['body'] | AsyncIterable<Uint8Array>
}

/**
 * Any request to the server (`path` after the base URL, e.g. `/images?scope=cluster`). Resolves with the
 * response once its status is below 400, its body unread; rejects with a PixelportError carrying the
 * server's code, or PXP_ERR_CLOSED (with the network error as `cause`) when no answer came.
 */
export async function request (baseUrl: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const url = baseUrl.replace(/\/+$/, '') + path
  const doFetch = options.fetch ?? fetch
  const method = options.method ?? 'GET'
  let res: Response
  try {
    const init: RequestInit & { duplex?: 'half' } = { method, signal: options.signal, headers: options.headers }
    if (options.body !== undefined) {
      init.body = options.body as RequestInit['body']
      // A streamed body needs half duplex (fetch's rule): the response may start before it ends.
      if (typeof (options.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function' || options.body instanceof ReadableStream) init.duplex = 'half'
    }
    res = await doFetch(url, init)
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw pxpError('PXP_ERR_ABORTED', `${method} ${url}`)
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    throw Object.assign(pxpError('PXP_ERR_CLOSED', `connection to ${url} (${cause?.code ?? cause?.message ?? (err as Error).message})`), { cause: err })
  }
  if (!res.ok) throw await errorOf(res)
  return res
}
