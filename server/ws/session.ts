/**
 * Who is on the other end of a WebSocket connection: the principal its token grants (scopes and ids), and
 * the `hello` that authenticates it when the upgrade request carried no token.
 *
 * A connection that presented no token at the upgrade, on a server that requires one, must send
 * `hello { token }` first and within authTimeoutMs; until then nothing else is accepted or explained.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { CHUNK_HEAD_BYTES, PROTOCOL_VERSION } from '../../protocol/wire/framing.js'
import type { HelloMessage } from '../../protocol/wire/client-messages.js'
import { Principal } from '../auth/tokens.js'
import type { ServerContext } from '../context.js'
import type { ServerLimits } from '../../protocol/wire/server-messages.js'
import type { RequestId } from '../../protocol/wire/fields.js'
import type { Outbound } from './outbound.js'
import type { TokenConnections } from './token-connections.js'

/** What the `hello` handler needs of its connection. */
export interface SessionHost {
  readonly ctx: ServerContext
  readonly out: Outbound
  readonly limits: ServerLimits
  readonly tokenConnections?: TokenConnections
  fail (err: PixelportError, sub?: number, req?: RequestId | null): void
}

export class Session {
  /** Set while a client that presented no token at the upgrade has yet to send `hello { token }`. */
  private authTimer: NodeJS.Timeout | null = null

  /**
   * `principal`: who the upgrade request authenticated as (Principal.none without a token when tokens are
   * required; then `onTimeout` runs unless a `hello` with a valid token comes within `authTimeoutMs`).
   */
  constructor (private current: Principal, authTimeoutMs: number, onTimeout: () => void) {
    if (current === Principal.none) this.authTimer = setTimeout(onTimeout, authTimeoutMs).unref()
  }

  get principal (): Principal { return this.current }

  /** False until a connection that needs a `hello { token }` has sent a valid one. */
  get authenticated (): boolean { return this.authTimer === null }

  /** Answer a `hello`: authenticate, check the protocol version, agree on the fragment size, welcome. */
  hello (host: SessionHost, msg: HelloMessage): void {
    if (!this.authenticate(host, msg.token)) {
      host.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, msg.req)
      return
    }
    if (msg.protocol !== PROTOCOL_VERSION) {
      host.fail(pxpError('PXP_ERR_PROTOCOL', `protocol version ${msg.protocol} is not supported; this server speaks ${PROTOCOL_VERSION}`), undefined, msg.req)
      return
    }
    if (msg.fragmentSize !== undefined) host.out.fragmentSize = Math.min(msg.fragmentSize, host.limits.chunkSize + CHUNK_HEAD_BYTES)
    host.out.send({ op: 'welcome', req: msg.req, protocol: PROTOCOL_VERSION, server: 'pixelport', limits: host.limits, fragmentSize: host.out.fragmentSize })
  }

  /** Stop the authentication clock (the connection is closing). */
  dispose (): void {
    if (this.authTimer !== null) clearTimeout(this.authTimer)
  }

  /**
   * Apply a `hello`'s token. True when the connection may go on: the token is valid, or none was needed.
   * A token that fails is never ignored, even where none was required.
   */
  private authenticate (host: SessionHost, token: string | undefined): boolean {
    const registry = host.ctx.options.tokens
    if (token !== undefined && registry.enabled) {
      const principal = registry.authenticate(token)
      if (principal === null) return false
      const full = host.tokenConnections?.claim(host, principal) ?? null
      if (full !== null) {
        // Closed with 4429 and this error; the caller's own refusal then finds the connection closed.
        host.fail(full)
        return false
      }
      this.current = principal
    } else if (this.authTimer !== null) {
      return false
    }
    this.dispose()
    this.authTimer = null
    return true
  }
}
