/**
 * The staging budget: bytes that uploads in progress may hold at once, on every path together (HTTP PUT
 * staging buffers, raw POST reservations in the store, picture files and their decoded pixels, WebSocket
 * chunked puts). An upload reserves its bytes before it reads a byte of its body and gives them back
 * however it ends; a reservation that does not fit is refused at once with PXP_ERR_STAGING_FULL, so a
 * crowd of slow or stalled uploaders can never hold more than the budget.
 */
import { pxpError } from '../../protocol/errors.js'

/** One upload's share of the budget. `release()` is idempotent. */
export interface StagingLease {
  /** Bytes held. */
  readonly bytes: number
  /** Hold `n` more bytes (a body of unknown length as it arrives), or throw PXP_ERR_STAGING_FULL. */
  grow (n: number): void
  release (): void
}

export class StagingBudget {
  private used = 0
  private leases = 0

  /** @param maxBytes the budget; `option` names the setting that raises it, for error messages */
  constructor (readonly maxBytes: number, private readonly option = 'stagingBudgetBytes') {}

  /** Bytes reserved now. */
  get bytes (): number { return this.used }

  /** Reservations held now (uploads in progress). */
  get count (): number { return this.leases }

  /** Reserve `n` bytes for one upload, or throw PXP_ERR_STAGING_FULL (nothing reserved then). */
  reserve (n: number): StagingLease {
    this.take(n)
    this.leases++
    let held = n
    let released = false
    return {
      get bytes () { return held },
      grow: (more: number) => {
        if (released) throw pxpError('PXP_ERR_CLOSED', 'upload')
        this.take(more)
        held += more
      },
      release: () => {
        if (released) return
        released = true
        this.used -= held
        this.leases--
      },
    }
  }

  private take (n: number): void {
    if (n > this.maxBytes) {
      // Permanent: no amount of waiting makes it fit.
      throw Object.assign(pxpError('PXP_ERR_STAGING_FULL', `an upload of ${n} bytes is larger than the whole budget of ${this.maxBytes} bytes (raise ${this.option})`), { retryable: false })
    }
    if (this.used + n > this.maxBytes) {
      throw Object.assign(pxpError('PXP_ERR_STAGING_FULL', `${this.used} of ${this.maxBytes} bytes are held by ${this.leases} uploads in progress; no room for ${n} more (retry later)`), { retryable: true })
    }
    this.used += n
  }
}

/** True for a PXP_ERR_STAGING_FULL worth retrying (the budget is in use, not too small). */
export function isRetryable (err: unknown): boolean {
  return (err as { retryable?: unknown } | null)?.retryable === true
}
