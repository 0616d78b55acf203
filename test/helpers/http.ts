/**
 * Small HTTP helpers for the API tests: real requests against a real server, nothing mocked.
 */
import http from 'node:http'
import { randomFillSync } from 'node:crypto'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { PixelportServer } from '../../server/server.js'
import type { StoreStats } from '../../server/store/image-store.js'

export interface JsonResponse<T = any> {
  status: number
  headers: Headers
  body: T
}

/** Send JSON (or nothing) and parse the JSON answer (null for an empty body). */
export async function call<T = any> (url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const res = await fetch(url + path, init)
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) }
}

/** Create an image from raw bytes: the create fields as query parameters, the bytes as the body. */
export async function upload<T = any> (url: string, query: Record<string, string | number | boolean>, bytes: Uint8Array | ReadableStream<Uint8Array>): Promise<JsonResponse<T>> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes }
  if (bytes instanceof ReadableStream) init.duplex = 'half'
  const res = await fetch(`${url}/images?${qs}`, init)
  return { status: res.status, headers: res.headers, body: await res.json() as T }
}

/** Overwrite an image's pixels. */
export async function put<T = any> (url: string, id: string, bytes: Uint8Array): Promise<JsonResponse<T>> {
  const res = await fetch(`${url}/images/${encodeURIComponent(id)}/data`, {
    method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes,
  })
  return { status: res.status, headers: res.headers, body: await res.json() as T }
}

export interface BytesResponse {
  status: number
  headers: Headers
  bytes: Uint8Array
}

/** Download an image's bytes. */
export async function download (url: string, id: string, headers: Record<string, string> = {}): Promise<BytesResponse> {
  const res = await fetchBytes(url, `/images/${encodeURIComponent(id)}/data`, headers)
  return { ...res, bytes: new Uint8Array(res.bytes.buffer, res.bytes.byteOffset, res.bytes.byteLength) }
}

/** A chunked request body (no Content-Length) made of `chunks`. */
export function chunked (...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start (controller) {
      for (const c of chunks) controller.enqueue(c)
      controller.close()
    },
  })
}

export function randomBytes (n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n))
}

/** What must not change when a request fails. */
export function storeState (server: PixelportServer): { list: ImageDescriptor[], stats: StoreStats } {
  return { list: server.store.list(), stats: server.store.stats() }
}

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/**
 * A request through node:http, for what fetch cannot do: declare a Content-Length and send only part of
 * the body (or none), then wait for the answer. Write errors after the server answered and closed are
 * expected and ignored.
 */
export async function rawRequest (url: string, options: { method: string, path: string, headers?: http.OutgoingHttpHeaders, body?: Uint8Array }): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url + options.path, { method: options.method, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err)
    })
    if (options.body !== undefined) req.write(options.body)
    req.flushHeaders()
  })
}

/** The bytes of a strided region (numpy's rule: element [i, j, ...] at offset + sum(index * stride)). */
export function stridedCopy (base: Uint8Array, shape: readonly number[], strides: readonly number[], offset: number, itemSize: number): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1)
  const out = new Uint8Array(count * itemSize)
  const index = new Array<number>(shape.length).fill(0)
  for (let k = 0; k < count; k++) {
    let at = offset
    for (let d = 0; d < shape.length; d++) at += index[d] * strides[d]
    out.set(base.subarray(at, at + itemSize), k * itemSize)
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break
      index[d] = 0
    }
  }
  return out
}

// ---- pictures (the format tests) ----

/** POST /images with a picture body of `type` (and the create fields the query may carry). */
export async function postPicture<T = any> (url: string, body: Uint8Array | ReadableStream<Uint8Array>, type: string, query: Record<string, string | number | boolean> = {}): Promise<JsonResponse<T>> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: { 'content-type': type }, body }
  if (body instanceof ReadableStream) init.duplex = 'half'
  const res = await fetch(`${url}/images${qs === '' ? '' : '?' + qs}`, init)
  return { status: res.status, headers: res.headers, body: await res.json() as T }
}

export interface PictureResponse {
  status: number
  headers: Headers
  bytes: Buffer
}

/** GET a path (e.g. `/images/cam1%2Fframe.png`) as bytes. */
export async function fetchBytes (url: string, path: string, headers: Record<string, string> = {}): Promise<PictureResponse> {
  const res = await fetch(url + path, { headers })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

/** The picture path of an image id: `/images/<encoded id>.<extension>`. */
export function picturePath (id: string, extension: string, query = ''): string {
  return `/images/${encodeURIComponent(id)}.${extension}${query}`
}

/** Parse a JSON error body out of a bytes response. */
export function errorOf (res: PictureResponse): { code: string, message: string } {
  return JSON.parse(res.bytes.toString('utf8')) as { code: string, message: string }
}
