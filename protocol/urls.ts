/**
 * Paths of the HTTP API, built in one place: an image id is percent-encoded as one path segment (its "/"
 * included), so `cams/1` is `/images/cams%2F1`.
 */

/** `/images/<encoded id><suffix>`: `suffix` is '' (the descriptor), '/data', '/views', '.png', … */
export function imagePath (id: string, suffix = ''): string {
  return `/images/${encodeURIComponent(id)}${suffix}`
}

/** `base` (a server URL, with or without a trailing slash or a base path) joined with `path`. */
export function joinUrl (base: string, path: string): string {
  return base.replace(/\/+$/, '') + path
}
