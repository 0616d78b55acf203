/**
 * WebSocket connections per token (option maxConnectionsPerToken).
 *
 * The per-address limit alone is easy to get around: every 127.x.y.z is another loopback address, and a
 * client with many addresses is not hard to find. A token is one client whatever address it comes from.
 * Connections without a token (authentication off, or before `hello`) are not counted here.
 */
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import { Principal } from '../auth/tokens.js'

export class TokenConnections {
  private readonly counts = new Map<Principal, number>()
  private readonly holders = new Map<object, Principal>()

  constructor (readonly max: number) {}

  /** Is there room for one more connection of `principal`? (Checked at the upgrade, to answer 429 before it.) */
  full (principal: Principal): PixelportError | null {
    if (!counted(principal)) return null
    return (this.counts.get(principal) ?? 0) >= this.max ? pxpError('PXP_ERR_TOO_MANY_CONNECTIONS', this.max, 'token') : null
  }

  /**
   * Count `holder` (a connection) as one of `principal`'s, replacing what it held before (a `hello` may
   * authenticate a connection again). Returns the error, counting nothing, when the token has no room left.
   */
  claim (holder: object, principal: Principal): PixelportError | null {
    if (this.holders.get(holder) === principal) return null
    const refused = this.full(principal)
    if (refused !== null) return refused
    this.release(holder)
    if (!counted(principal)) return null
    this.holders.set(holder, principal)
    this.counts.set(principal, (this.counts.get(principal) ?? 0) + 1)
    return null
  }

  /** The connection is gone. Idempotent. */
  release (holder: object): void {
    const principal = this.holders.get(holder)
    if (principal === undefined) return
    this.holders.delete(holder)
    const left = (this.counts.get(principal) ?? 1) - 1
    if (left === 0) this.counts.delete(principal)
    else this.counts.set(principal, left)
  }

  /** Connections counted against `principal` (for tests and stats). */
  count (principal: Principal): number {
    return this.counts.get(principal) ?? 0
  }
}

function counted (principal: Principal): boolean {
  return principal !== Principal.none && principal !== Principal.unrestricted
}
