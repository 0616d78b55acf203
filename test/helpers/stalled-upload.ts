/**
 * Uploads that stop: a raw TCP client declares a body, sends part of it (or trickles it), and then sends
 * nothing more. Everything the server does about it is observed from outside: the response it sends, and
 * whether it closes the connection.
 */
import net from 'node:net'
import type { Test } from 'tap'

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
  /** The parsed JSON body, or null. */
  json: { code?: string, message?: string } | null
}

export interface StalledUpload {
  readonly socket: net.Socket
  /** Resolves with the server's answer once it closed the connection. */
  readonly answer: Promise<RawAnswer>
  /** Send more of the body. */
  write (bytes: Uint8Array | string): void
}

export interface StallOptions {
  method: string
  path: string
  contentType: string
  /** Content-Length to declare; omitted: chunked transfer encoding (`send` is then sent as one chunk). */
  length?: number
  /** Bytes of the body to send before stalling. */
  send: Uint8Array
  headers?: Record<string, string>
}

/** Open a connection, send the request head and `send`, then stall. The socket is destroyed at teardown. */
export async function stallUpload (t: Test, url: string, options: StallOptions): Promise<StalledUpload> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  t.teardown(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.on('error', () => {})
  const chunked = options.length === undefined
  const head = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    `Content-Type: ${options.contentType}`,
    chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${options.length!}`,
    ...Object.entries(options.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    '', '',
  ].join('\r\n')
  let received = Buffer.alloc(0)
  socket.on('data', (b: Buffer) => { received = Buffer.concat([received, b]) })
  const answer = new Promise<RawAnswer>((resolve) => socket.once('close', () => resolve(parseAnswer(received))))
  const write = (bytes: Uint8Array | string): void => {
    if (socket.destroyed) return
    if (!chunked) socket.write(bytes)
    else if (bytes.length > 0) socket.write(Buffer.concat([Buffer.from(`${Buffer.byteLength(bytes).toString(16)}\r\n`), Buffer.from(bytes), Buffer.from('\r\n')]))
  }
  socket.write(head)
  write(options.send)
  return { socket, answer, write }
}

function parseAnswer (raw: Buffer): RawAnswer {
  const text = raw.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return { status: 0, headers: {}, body: text, json: null }
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  const body = text.slice(end + 4)
  let json = null
  try {
    json = JSON.parse(body)
  } catch {}
  return { status: Number(statusLine.split(' ')[1]), headers, body, json }
}

/** `promise`, or a failure naming `what` after `ms`: a test of a timeout must fail, not hang, on code without one. */
export async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
