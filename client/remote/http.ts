/**
 * The HTTP client: descriptors, listings, downloads and uploads over the HTTP API, in Node.js (undici)
 * and browsers (fetch). The one HTTP client of the project: RemoteClient, the CLI, the soak and the tests
 * use it. Errors are PixelportErrors with the server's code.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { errorBodyIn, errorFromBody, pxpError, type PixelportError } from '../../protocol/errors.js'
import { decodeDescriptorHeader, DESCRIPTOR_HEADER, PREFER_DESCRIPTOR, PREFER_REDIRECT, withoutPreference } from '../../protocol/http-headers.js'
import { imagePath, joinUrl } from '../../protocol/urls.js'
import { typedView } from './frames.js'
import { fetchTransport, platformTransport, type HttpBody, type HttpResponse, type HttpTransport } from './transport.js'

export interface HttpOptions {
  signal?: AbortSignal
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>
  /** A fetch implementation to use instead of the platform's transport (undici in Node.js, fetch elsewhere). */
  fetch?: typeof fetch
}

export interface HttpClientOptions {
  /** Bearer token, sent as `Authorization: Bearer …` to the server (and to trusted redirect targets). */
  token?: string
  /** Extra headers on every request. */
  headers?: Record<string, string>
  /** A fetch implementation to use instead of the platform's transport. */
  fetch?: typeof fetch
  /**
   * Downloads and read() ask for a redirect to the node that owns the image (`Prefer: redirect`) and follow one 307
   * to an http(s) URL. Credentials (the token, and any authorization or cookie header) go along only
   * when the target's origin is the server's own or one of `trustedOrigins`: a server cannot send them
   * to a host of its choosing.
   */
  redirect?: boolean
  /** Origins (`https://node-b:8080`) trusted with the credentials after a redirect. Scheme, host and port must match. */
  trustedOrigins?: string[]
  /** @internal Use the platform's shared connection pool (the one-off helper functions). */
  shared?: boolean
}

export interface SendOptions {
  body?: HttpBody
  headers?: Record<string, string>
  signal?: AbortSignal
  /** Receive the body here when it fits. */
  into?: Uint8Array
}

export interface Download {
  /** The image, with `generation` set to the generation of these bytes. */
  descriptor: ImageDescriptor
  generation: number
  bytes: Uint8Array
  /** `bytes` as a TypedArray of the image's dtype. */
  data: TypedArray
}

export interface DownloadOptions {
  signal?: AbortSignal
  /** Receive into this buffer (at least the image's byteLength) instead of a new one. */
  into?: Uint8Array
}

/** Headers that carry credentials: never sent to an origin not trusted with them. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization'])

/**
 * The PixelportError of a failed response: its `{code, message}` body, or, for a body that is not one
 * (a proxy's page, an empty 502), an error naming the status.
 */
export function errorFromResponse (res: Pick<HttpResponse, 'status' | 'url' | 'bytes'>): PixelportError {
  const body = errorBodyIn(new TextDecoder().decode(res.bytes))
  if (body !== null) return errorFromBody(body)
  return pxpError(res.status === 404 ? 'PXP_ERR_ROUTE_NOT_FOUND' : 'PXP_ERR_INTERNAL', `HTTP ${res.status} from ${res.url}`)
}

/** The body of a response as JSON (null when empty). */
export function jsonOf<T = unknown> (res: HttpResponse): T {
  return (res.bytes.byteLength === 0 ? null : JSON.parse(new TextDecoder().decode(res.bytes))) as T
}

export class HttpClient {
  readonly baseUrl: string
  private transport: Promise<HttpTransport> | null = null
  /** Requests in flight, each with the controller destroy() aborts. */
  private readonly inFlight = new Set<AbortController>()
  private idle: (() => void) | null = null
  private closing: Promise<void> | null = null
  private state: 'open' | 'closing' | 'closed' = 'open'
  private readonly headers: Record<string, string>
  private readonly trusted: Set<string>

  constructor (baseUrl: string | URL, private readonly options: HttpClientOptions = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '')
    this.headers = { ...options.headers }
    if (options.token !== undefined) this.headers.authorization = `Bearer ${options.token}`
    this.trusted = new Set([new URL(this.baseUrl).origin, ...(options.trustedOrigins ?? []).map((o) => new URL(o).origin)])
  }

  /** `method path` (a path under the base URL, or an absolute URL), whatever the status. */
  async send (method: string, path: string, options: SendOptions = {}): Promise<HttpResponse> {
    if (this.state !== 'open') throw pxpError('PXP_ERR_CLOSED', 'HTTP client')
    return await this.dispatch(method, /^https?:\/\//.test(path) ? path : joinUrl(this.baseUrl, path), { ...this.headers, ...options.headers }, options)
  }

  /** Like send(), but a status other than 2xx throws the server's error. */
  async request (method: string, path: string, options: SendOptions = {}): Promise<HttpResponse> {
    const res = await this.send(method, path, options)
    if (res.status < 200 || res.status > 299) throw errorFromResponse(res)
    return res
  }

  /** `GET /images/:id`: the descriptor of one image. */
  async describe (id: string, options: { signal?: AbortSignal } = {}): Promise<ImageDescriptor> {
    return jsonOf<ImageDescriptor>(await this.request('GET', imagePath(id), options))
  }

  /** `GET /images`: every descriptor, following the pages' `next` cursors to the end. */
  async list (options: { signal?: AbortSignal } = {}): Promise<ImageDescriptor[]> {
    const all: ImageDescriptor[] = []
    for (let cursor: string | null = null; ;) {
      const query: string = cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`
      const body = jsonOf<ImageDescriptor[] | { images: ImageDescriptor[], next?: string | null }>(await this.request('GET', `/images${query}`, options))
      if (Array.isArray(body)) return body
      all.push(...body.images)
      // A server from before paging sends no `next`: its one reply is everything.
      if (body.next == null) return all
      cursor = body.next
    }
  }

  /**
   * `GET /images/:id/data` (one consistent generation) with its descriptor: one request, the descriptor of
   * exactly these bytes in its X-Pixelport-Descriptor header (`Prefer: descriptor`). From a server that
   * does not send one, the descriptor is asked for separately and stamped with the generation the bytes
   * are; if the image was replaced by another of the same id in between (a different shape), both are
   * fetched again.
   */
  async download (id: string, options: DownloadOptions = {}): Promise<Download> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.read(imagePath(id, '/data'), { ...options, headers: { prefer: PREFER_DESCRIPTOR } })
      const descriptor = decodeDescriptorHeader(res.headers[DESCRIPTOR_HEADER]) ?? await this.describe(id, options)
      const { bytes } = res
      const shape = res.headers['x-pixelport-shape']
      const typestr = res.headers['x-pixelport-typestr']
      const sameImage = (shape === undefined || shape === descriptor.shape.join(',')) && (typestr === undefined || typestr === descriptor.typestr) &&
        bytes.byteLength === descriptor.byteLength
      if (!sameImage) {
        if (attempt < 2) continue
        throw pxpError('PXP_ERR_BYTE_COUNT', descriptor.byteLength, bytes.byteLength)
      }
      const header = res.headers['x-pixelport-generation']
      const generation = header !== undefined && /^\d+$/.test(header) ? Number(header) : descriptor.generation
      return { descriptor: { ...descriptor, generation }, generation, bytes, data: typedView(descriptor.typestr, bytes) }
    }
  }

  /** `PUT /images/:id/data`: overwrite an image's pixels; resolves with its new descriptor. */
  async put (id: string, bytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<ImageDescriptor> {
    return jsonOf<ImageDescriptor>(await this.request('PUT', imagePath(id, '/data'), { ...options, body: bytes, headers: { 'content-type': 'application/octet-stream' } }))
  }

  /** `POST /images?…` with raw bytes: create an image (`fields`: width, height, mode, id, … as the query). */
  async create (fields: Record<string, string | number | boolean>, bytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<ImageDescriptor> {
    const query = new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)])).toString()
    return jsonOf<ImageDescriptor>(await this.request('POST', `/images?${query}`, { ...options, body: bytes, headers: { 'content-type': 'application/octet-stream' } }))
  }

  /** `DELETE /images/:id`. */
  async delete (id: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.request('DELETE', imagePath(id), options)
  }

  /** Graceful: requests in flight finish, then the connections close; later calls fail with PXP_ERR_CLOSED. Idempotent. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.state === 'open') this.state = 'closing'
      if (this.inFlight.size > 0) await new Promise<void>((resolve) => { this.idle = resolve })
      this.state = 'closed'
      if (this.transport !== null) await (await this.transport).close()
    })()
    await this.closing
  }

  /** Immediate: requests in flight fail with PXP_ERR_CLOSED, the connections close. Idempotent. */
  async destroy (): Promise<void> {
    this.state = 'closed'
    for (const c of this.inFlight) c.abort()
    if (this.transport !== null) await (await this.transport).destroy()
  }

  /**
   * `GET path` for a read (`/images/:id/data`, `/images/:id.png?…`) whose answer must be 2xx. With the
   * `redirect` option a cluster node is asked for a redirect to the image's owner, and one is followed.
   */
  async read (path: string, options: SendOptions = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...options.headers }
    if (this.options.redirect === true) headers.prefer = headers.prefer === undefined ? PREFER_REDIRECT : `${PREFER_REDIRECT}, ${headers.prefer}`
    const res = await this.send('GET', path, { ...options, headers })
    if (res.status === 307 && this.options.redirect === true) return await this.follow(res, options)
    if (res.status < 200 || res.status > 299) throw errorFromResponse(res)
    return res
  }

  /**
   * One redirect: to http(s) only, credentials only to a trusted origin, and no second redirect. The
   * request's own headers go along under the same rule (a `Prefer: descriptor`, say).
   */
  private async follow (res: HttpResponse, options: SendOptions): Promise<HttpResponse> {
    let target: URL
    try {
      target = new URL(res.headers.location ?? '', res.url)
    } catch {
      throw pxpError('PXP_ERR_PROTOCOL', `${res.url} redirected to ${JSON.stringify(res.headers.location)}, which is not a URL`)
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw pxpError('PXP_ERR_PROTOCOL', `${res.url} redirected to a ${target.protocol} URL; only http(s) is followed`)
    const headers: Record<string, string> = {}
    const trusted = this.trusted.has(target.origin)
    for (const [name, value] of Object.entries({ ...this.headers, ...options.headers })) {
      if (trusted || !CREDENTIAL_HEADERS.has(name.toLowerCase())) headers[name] = value
    }
    // The owner serves its own image: no redirect to ask it for.
    const prefer = withoutPreference(headers.prefer, PREFER_REDIRECT)
    if (prefer === undefined) delete headers.prefer
    else headers.prefer = prefer
    if (this.state !== 'open') throw pxpError('PXP_ERR_CLOSED', 'HTTP client')
    const next = await this.dispatch('GET', target.href, headers, options)
    if (next.status >= 300 && next.status <= 399) throw pxpError('PXP_ERR_PROTOCOL', `${target.href} redirected again (HTTP ${next.status}); one redirect is followed`)
    if (next.status < 200 || next.status > 299) throw errorFromResponse(next)
    return next
  }

  private async dispatch (method: string, url: string, headers: Record<string, string>, options: SendOptions): Promise<HttpResponse> {
    if (options.signal?.aborted ?? false) throw pxpError('PXP_ERR_ABORTED', `${method} ${url}`)
    // In flight from here on, before any await: close() waits for it, destroy() stops it. A controller of
    // our own, so that destroy() also stops requests the caller gave no signal for.
    const controller = new AbortController()
    const onAbort = (): void => controller.abort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.inFlight.add(controller)
    try {
      this.transport ??= this.options.fetch !== undefined ? Promise.resolve(fetchTransport(this.options.fetch)) : platformTransport(this.options.shared === true)
      const transport = await this.transport
      if (controller.signal.aborted) throw pxpError('PXP_ERR_CLOSED', 'HTTP client')
      return await transport.send({ method, url, headers, body: options.body, signal: controller.signal, into: options.into })
    } catch (err) {
      if (options.signal?.aborted ?? false) throw pxpError('PXP_ERR_ABORTED', `${method} ${url}`)
      if (controller.signal.aborted) throw pxpError('PXP_ERR_CLOSED', `HTTP client (destroyed while ${method} ${url} was in flight)`)
      throw err
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      this.inFlight.delete(controller)
      if (this.inFlight.size === 0) this.idle?.()
    }
  }
}

function oneOff (baseUrl: string, options: HttpOptions): HttpClient {
  return new HttpClient(baseUrl, { headers: options.headers, fetch: options.fetch, shared: true })
}

/** `GET /images/:id`: the descriptor of one image. */
export async function fetchDescriptor (baseUrl: string, id: string, options: HttpOptions = {}): Promise<ImageDescriptor> {
  return await oneOff(baseUrl, options).describe(id, options)
}

/** `GET /images`: every descriptor, following the pages' `next` cursors to the end. */
export async function fetchList (baseUrl: string, options: HttpOptions = {}): Promise<ImageDescriptor[]> {
  return await oneOff(baseUrl, options).list(options)
}

/** `GET /images/:id/data` with its descriptor: `{ descriptor, data, bytes }` (see HttpClient.download). */
export async function download (baseUrl: string, id: string, options: HttpOptions = {}): Promise<Download> {
  return await oneOff(baseUrl, options).download(id, options)
}
