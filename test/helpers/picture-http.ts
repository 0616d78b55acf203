/**
 * Requests the format tests make: upload a picture, fetch a picture.
 */
import type { JsonResponse } from './http.js'

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
