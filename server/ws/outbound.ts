/**
 * Everything one connection sends, with backpressure.
 *
 * - Control messages (replies, events) are small and sent at once.
 * - Chunks are sent only while the connection's send buffer (`bufferedAmount`) is below highWaterMark;
 *   streams `await writable()` between chunks, so a client that reads nothing holds at most about
 *   highWaterMark + one chunk in server memory.
 * - A client that keeps sending requests without reading the replies could still grow the buffer, so
 *   above `pauseReadsAt` the server stops reading from it until it drains (TCP then pushes back on it);
 *   the Connection holds back the messages `ws` had already read (see `readsPaused`).
 *
 * Chunk payloads are written without a copy: when `ws` negotiated no extension, the frame header and the
 * payload view are written straight to its socket, corked, exactly as `ws` writes its own frames (so
 * ordering with `ws.send` is preserved: `ws` writes synchronously when nothing is being compressed).
 * Otherwise the chunk goes out as a two-fragment message through `ws`, also without a copy.
 */
import type { Duplex } from 'node:stream'
import { WebSocket } from 'ws'
import type { ServerMessage } from '../../protocol/messages.js'
import { chunkFrameHead, chunkHead, encode, fragmentedChunk } from './codec.js'

type WriteCallback = (err?: Error | null) => void

export class Outbound {
  private readonly raw: Duplex | null
  private waiters: Array<() => void> = []
  private closers: Array<() => void> = []
  private paused = false
  private resumeListener: (() => void) | null = null
  private isClosed = false
  private readonly onWritten = (): void => this.progress()
  /** Frame size chunk messages are split into (the client asked in `hello`); 0: one frame each. */
  fragmentSize = 0

  constructor (
    private readonly ws: WebSocket,
    readonly highWaterMark: number,
    private readonly pauseReadsAt: number,
  ) {
    const raw = (ws as unknown as { _socket?: Duplex })._socket
    this.raw = raw !== undefined && ws.extensions === '' ? raw : null
    // Backstop for writes that carry no callback of ours (ws's own pings and close frames).
    raw?.on('drain', this.onWritten)
    ws.once('close', () => {
      this.isClosed = true
      this.progress()
      const closers = this.closers
      this.closers = []
      for (const fn of closers) fn()
    })
  }

  /** True while messages can still be sent. */
  get open (): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get buffered (): number {
    return this.ws.bufferedAmount
  }

  /** True when the zero-copy frame path is in use (no WebSocket extension negotiated). */
  get direct (): boolean {
    return this.raw !== null
  }

  /** True while the server does not read from this client (its replies are piling up unread). */
  get readsPaused (): boolean {
    return this.paused
  }

  /** Called whenever reading resumes. */
  onResume (fn: () => void): void {
    this.resumeListener = fn
  }

  /**
   * Run `fn` once when the connection closes (at once if it already has). Returns a function that
   * cancels the registration (call it when `fn` is no longer needed, or registrations pile up).
   */
  onClose (fn: () => void): () => void {
    if (this.isClosed) {
      fn()
      return () => {}
    }
    this.closers.push(fn)
    return () => {
      const i = this.closers.indexOf(fn)
      if (i >= 0) this.closers.splice(i, 1)
    }
  }

  /** Send a control message; dropped silently once the connection is closing. */
  send (message: ServerMessage): void {
    if (!this.open) return
    this.ws.send(encode(message), this.onWritten)
    this.checkReads()
  }

  /**
   * Send one chunk message: `{ op: 'chunk', stream, offset, data: payload }`. The payload must not change
   * until `done` is called (with an error if the connection closed first).
   */
  sendChunk (stream: number, offset: number, payload: Uint8Array, done?: WriteCallback): void {
    if (!this.open) {
      if (done !== undefined) queueMicrotask(() => done(new Error('connection closed')))
      return
    }
    const callback: WriteCallback = done === undefined
      ? this.onWritten
      : (err) => {
          this.progress()
          done(err)
        }
    if (this.raw !== null) {
      const raw = this.raw
      raw.cork()
      if (this.fragmentSize > 0) {
        // All frames of the message in one synchronous, corked run: nothing can come between them.
        const parts = fragmentedChunk(stream, offset, payload, this.fragmentSize)
        for (let i = 0; i < parts.length - 1; i++) raw.write(parts[i])
        raw.write(parts[parts.length - 1], callback)
      } else {
        raw.write(chunkFrameHead(stream, offset, payload.byteLength))
        raw.write(payload, callback)
      }
      // uncork on next tick would batch more, but then `bufferedAmount` lags the writes we just made.
      raw.uncork()
    } else {
      this.ws.send(chunkHead(stream, offset, payload.byteLength), { binary: true, fin: false })
      this.ws.send(payload, { binary: true, fin: true }, callback)
    }
  }

  /**
   * Resolves true once the send buffer is below highWaterMark (at once when it already is), false when the
   * connection closed first.
   */
  async writable (): Promise<boolean> {
    while (this.open && this.buffered >= this.highWaterMark) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    return this.open
  }

  /** Close with `code`; the reason is the error code (close reasons are limited to 123 bytes). */
  close (code: number, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason.slice(0, 123))
    }
  }

  /** Drop the connection without a closing handshake. */
  terminate (): void {
    this.ws.terminate()
  }

  private progress (): void {
    if (this.paused && (this.isClosed || this.buffered < this.highWaterMark)) {
      this.paused = false
      if (!this.isClosed) {
        this.ws.resume()
        this.resumeListener?.()
      }
    }
    if (this.waiters.length === 0) return
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  private checkReads (): void {
    if (!this.paused && this.buffered > this.pauseReadsAt) {
      this.paused = true
      this.ws.pause()
    }
  }
}
