/**
 * Signed node registrations: who may receive the cluster token.
 *
 * A node's heartbeat value in Redis names the URL the others forward requests to, with the cluster token
 * in the Authorization header. Whoever can write to Redis could otherwise register a node of their own and
 * collect that token (an admin token for every node). So each registration carries an HMAC-SHA256 over its
 * id, URL and start time, keyed by the cluster token; a reader that holds the token ignores any entry whose
 * signature does not verify. Without a cluster token nothing is sent to peers that needs protecting, and
 * registrations are neither signed nor checked (Redis is then trusted with where requests go: docs/cluster.md).
 *
 * A registration also names the node's token configuration (`auth`, authDigest below): a node redirects a
 * client to a peer (`?redirect=1`) only when the peer's digest equals its own, i.e. when the client's token
 * opens the same images there. The digest is signed with the rest, so nobody without the cluster token can
 * claim a configuration a node does not have.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { TokenSpec } from '../auth/tokens.js'

/** The fields a signature covers; `lastSeen` changes every beat and grants nothing, so it is left out. */
export interface Registration {
  id: string
  url: string
  startedAt: number
  /** The node's token-configuration digest (authDigest); absent: the node never takes redirected clients. */
  auth?: string
}

/** Domain separation: this key signs nothing else. */
const CONTEXT = 'pixelport-node-registration-v1'

/**
 * Hex HMAC-SHA256 of `r` under `key`. Fields are JSON-encoded, so no two registrations share a message (one
 * with `auth` and one without differ in length, so stripping `auth` from a signed entry breaks its signature).
 */
export function signRegistration (key: string, r: Registration): string {
  const fields: unknown[] = [CONTEXT, r.id, r.url, r.startedAt]
  if (r.auth !== undefined) fields.push(r.auth)
  return createHmac('sha256', key).update(JSON.stringify(fields)).digest('hex')
}

/** True when `sig` is the signature of `r` under `key` (constant time in the signature's bytes). */
export function verifyRegistration (key: string, r: Registration, sig: unknown): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false
  return timingSafeEqual(Buffer.from(sig, 'hex'), Buffer.from(signRegistration(key, r), 'hex'))
}

/** Domain separation for the token-configuration digest. */
const AUTH_CONTEXT = 'pixelport-token-configuration-v1'

/**
 * A digest of what each token may do (`tokens`; names left out, they are only for logs): equal on two
 * nodes exactly when every client token opens the same images with the same scopes on both. Keyed with the
 * cluster token, so the value in Redis tells nobody without it anything about the tokens. Null when this
 * node must never redirect a client: it has tokens but no cluster token, so registrations are not signed and
 * whoever writes to Redis could copy the digest into a registration of their own and collect clients' tokens.
 */
export function authDigest (tokens: readonly TokenSpec[], clusterToken: string | null): string | null {
  if (tokens.length > 0 && clusterToken === null) return null
  const sorted = (xs: readonly string[] | undefined): string[] | null => xs === undefined ? null : [...xs].sort()
  const canonical = tokens
    .map((t) => JSON.stringify([createHash('sha256').update(t.token, 'utf8').digest('hex'), sorted(t.scopes), sorted(t.ids)]))
    .sort()
  return createHmac('sha256', clusterToken ?? AUTH_CONTEXT).update(JSON.stringify([AUTH_CONTEXT, canonical])).digest('hex')
}
