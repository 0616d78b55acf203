/**
 * The WebSocket endpoint for the URL a user has: the same base URL the CLI, curl and the browser use
 * (`http://host:8080`, `https://host/pixelport`), or the endpoint itself (`ws://host:8080/ws`).
 */
import { pxpError } from '../../protocol/errors.js'

/**
 * `http://h:8080` → `ws://h:8080/ws`, `https://h/base/` → `wss://h/base/ws`, `ws://h:8080` → `ws://h:8080/ws`;
 * a URL ending in /ws, or a `ws:`/`wss:` URL with a path, is taken as the endpoint. Query strings are kept (a token never belongs there:
 * pass it as the `token` option). Throws PXP_ERR_BAD_REQUEST for any other scheme.
 */
export function socketUrlOf (url: string | URL): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw pxpError('PXP_ERR_BAD_REQUEST', `not a URL: ${JSON.stringify(String(url))}; expected http://host:port or ws://host:port/ws`)
  }
  const scheme = ({ 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' } as Record<string, string>)[parsed.protocol]
  if (scheme === undefined) throw pxpError('PXP_ERR_BAD_REQUEST', `unsupported URL scheme ${parsed.protocol}; expected http://host:port or ws://host:port/ws`)
  const isSocketUrl = parsed.protocol === 'ws:' || parsed.protocol === 'wss:'
  parsed.protocol = scheme
  // An http(s) URL names the server (its base path included), and so does a ws(s) URL without a path;
  // one that already ends in /ws is the endpoint.
  const path = parsed.pathname.replace(/\/+$/, '')
  if (!path.endsWith('/ws') && (!isSocketUrl || path === '')) parsed.pathname = path + '/ws'
  parsed.hash = ''
  return parsed.toString()
}

/** The server's HTTP base URL for its WebSocket endpoint: `ws://h:8080/ws` → `http://h:8080`, `wss://h/base/ws` → `https://h/base`. */
export function httpUrlOf (socketUrl: string): string {
  const parsed = new URL(socketUrl)
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : 'http:'
  parsed.pathname = parsed.pathname.replace(/\/+$/, '').replace(/\/ws$/, '')
  parsed.search = ''
  parsed.hash = ''
  return parsed.toString().replace(/\/+$/, '')
}
