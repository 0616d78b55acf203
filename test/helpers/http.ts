/**
 * Small HTTP helpers for the API tests: real requests against a real server, nothing mocked. A thin
 * layer over the project's one HTTP client (client/remote/http.ts) that keeps every status for the test
 * to look at, with the headers as a `Headers` object.
 */
import net from 'node:net'
import http from 'node:http'
import { randomFillSync } from 'node:crypto'
import { errorFromResponse, HttpClient, type HttpBody, type HttpResponse } from '../../client/remote/index.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { imagePath } from '../../protocol/urls.js'
import type { PixelportServer } from '../../server/server.js'
import type { StoreStats } from '../../server/store/image-store.js'

export interface JsonResponse<T = any> {
  status: number
  headers: Headers
  body: T
}

/** One request to the server at `url`, whatever its status (undici's shared keep-alive pool). */
export async function send (url: string, method: string, path: string, options: { body?: HttpBody, headers?: Record<string, string> } = {}): Promise<HttpResponse> {
  return await new HttpClient(url, { shared: true }).send(method, path, options)
}

function parsed<T> (res: HttpResponse): JsonResponse<T> {
  const text = new TextDecoder().decode(res.bytes)
  return { status: res.status, headers: new Headers(res.headers), body: text === '' ? null : JSON.parse(text) }
}

function query (fields: Record<string, string | number | boolean>): string {
  return new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)])).toString()
}

/** Send JSON (or nothing) and parse the JSON answer (null for an empty body). */
export async function call<T = any> (url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const json = body === undefined ? {} : { body: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' } }
  return parsed<T>(await send(url, method, path, { headers, ...json }))
}

/** Create an image from raw bytes: the create fields as query parameters, the bytes as the body. */
export async function upload<T = any> (url: string, fields: Record<string, string | number | boolean>, bytes: Uint8Array | ReadableStream<Uint8Array>): Promise<JsonResponse<T>> {
  return parsed<T>(await send(url, 'POST', `/images?${query(fields)}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } }))
}

/** Overwrite an image's pixels. */
export async function put<T = any> (url: string, id: string, bytes: Uint8Array): Promise<JsonResponse<T>> {
  return parsed<T>(await send(url, 'PUT', imagePath(id, '/data'), { body: bytes, headers: { 'content-type': 'application/octet-stream' } }))
}

export interface BytesResponse {
  status: number
  headers: Headers
  bytes: Uint8Array
}

/** Download an image's bytes. */
export async function download (url: string, id: string, headers: Record<string, string> = {}): Promise<BytesResponse> {
  const res = await fetchBytes(url, imagePath(id, '/data'), headers)
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
export async function postPicture<T = any> (url: string, body: Uint8Array | ReadableStream<Uint8Array>, type: string, fields: Record<string, string | number | boolean> = {}): Promise<JsonResponse<T>> {
  const qs = query(fields)
  return parsed<T>(await send(url, 'POST', `/images${qs === '' ? '' : '?' + qs}`, { body, headers: { 'content-type': type } }))
}

export interface PictureResponse {
  status: number
  headers: Headers
  bytes: Buffer
}

/** GET a path (e.g. `/images/cam1%2Fframe.png`) as bytes. */
export async function fetchBytes (url: string, path: string, headers: Record<string, string> = {}): Promise<PictureResponse> {
  const res = await send(url, 'GET', path, { headers })
  return { status: res.status, headers: new Headers(res.headers), bytes: Buffer.from(res.bytes.buffer, res.bytes.byteOffset, res.bytes.byteLength) }
}

/** The picture path of an image id: `/images/<encoded id>.<extension>`. */
export function picturePath (id: string, extension: string, query = ''): string {
  return imagePath(id, `.${extension}${query}`)
}

/** Parse a JSON error body out of a bytes response. */
export function errorOf (res: PictureResponse): { code: string, message: string } {
  const { code, message } = errorFromResponse({ status: res.status, url: '', bytes: res.bytes })
  return { code, message }
}

/**
 * Raw bytes to the port of the server at `url` (no HTTP client in between: malformed and hostile requests);
 * resolves with everything it answered (latin1) once it closes, or after `timeoutMs`.
 */
export async function rawExchange (url: string, bytes: string, timeoutMs = 5000): Promise<string> {
  return await new Promise((resolve, reject) => {
    let answer = ''
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.write(bytes))
    const timer = setTimeout(() => { socket.destroy(); resolve(answer) }, timeoutMs)
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.on('error', (err) => { clearTimeout(timer); if (answer === '') reject(err); else resolve(answer) })
  })
}
