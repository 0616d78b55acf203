/**
 * Signed node registrations: who may receive the cluster token.
 *
 * A node's heartbeat value in Redis names the URL the others forward requests to, with the cluster token
 * in the Authorization header. Whoever can write to Redis could otherwise register a node of their own and
 * collect that token (an admin token for every node). So each registration carries an HMAC-SHA256 over its
 * id, URL and start time, keyed by the cluster token; a reader that holds the token ignores any entry whose
 * signature does not verify. Without a cluster token nothing is sent to peers that needs protecting, and
 * registrations are neither signed nor checked (Redis is then trusted with where requests go: docs/cluster.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** The fields a signature covers; `lastSeen` changes every beat and grants nothing, so it is left out. */
export interface Registration {
  id: string
  url: string
  startedAt: number
}

/** Domain separation: this key signs nothing else. */
const CONTEXT = 'pixelport-node-registration-v1'

/** Hex HMAC-SHA256 of `r` under `key`. Fields are JSON-encoded, so no two registrations share a message. */
export function signRegistration (key: string, r: Registration): string {
  return createHmac('sha256', key).update(JSON.stringify([CONTEXT, r.id, r.url, r.startedAt])).digest('hex')
}

/** True when `sig` is the signature of `r` under `key` (constant time in the signature's bytes). */
export function verifyRegistration (key: string, r: Registration, sig: unknown): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false
  return timingSafeEqual(Buffer.from(sig, 'hex'), Buffer.from(signRegistration(key, r), 'hex'))
}
