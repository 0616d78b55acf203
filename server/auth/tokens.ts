/**
 * Bearer tokens: who may do what to which images.
 *
 * A token carries scopes (`read`, `write`, `admin`) and, optionally, the ids it is limited to (`cam1/*` is
 * every id under `cam1/`, `cam1/main` exactly that id). Presented tokens are compared in constant time
 * against every configured token, so neither a match's position nor a near miss shows in the timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { pxpError } from '../../protocol/errors.js'

export const SCOPES = ['read', 'write', 'admin'] as const
export type Scope = typeof SCOPES[number]

/** How a token is configured (option `tokens`, `--token`, `--token-file`, PIXELPORT_TOKENS). */
export interface TokenSpec {
  /** The secret itself: at least MIN_TOKEN_LENGTH characters, no whitespace, ':' or ';'. */
  token: string
  scopes: Scope[]
  /** Ids the token may touch: `prefix/*` or an exact id. Absent: every id. An empty list is refused (it would read as "none" to some and "all" to others). */
  ids?: string[]
  /** A name for logs (never the token). Default `token-<n>`. */
  name?: string
}

/** Long enough that guessing over the network is hopeless. */
export const MIN_TOKEN_LENGTH = 16
const TOKEN_RE = /^[^\s:;]+$/

/** What one request or connection may do, once authenticated. */
export class Principal {
  /** Everything, everywhere: what every caller is when no tokens are configured. */
  static readonly unrestricted = new Principal('anonymous', new Set(SCOPES), null)
  /** Nothing at all: a caller without a token on a public route, or a WebSocket before its `hello`. */
  static readonly none = new Principal('unauthenticated', new Set(), null)

  constructor (
    readonly name: string,
    private readonly scopes: ReadonlySet<Scope>,
    /** Exact ids and `prefix/` strings; null: no limit. */
    private readonly patterns: ReadonlyArray<{ prefix: boolean, text: string }> | null,
  ) {}

  /** `admin` implies `read` and `write`. */
  has (scope: Scope): boolean {
    return this.scopes.has(scope) || this.scopes.has('admin')
  }

  /** True when the token is not limited to some ids. */
  get everyId (): boolean { return this.patterns === null }

  /** May this principal see or touch `id` at all (its scope aside)? Decided from the id alone. */
  mayTouch (id: string): boolean {
    if (this.patterns === null) return true
    return this.patterns.some((p) => p.prefix ? id.startsWith(p.text) : id === p.text)
  }

  /**
   * May this principal see `item` (a descriptor or an event's): its id, and for a view its base too, since a
   * view's descriptor and pixels are its base's.
   */
  maySee (item: { id: string, base?: string }): boolean {
    return this.mayTouch(item.id) && (item.base === undefined || this.mayTouch(item.base))
  }

  /** The items (images, events) this principal may see: lists never show what it may not touch. */
  visible<T extends { id: string, base?: string }> (items: T[]): T[] {
    return this.patterns === null ? items : items.filter((item) => this.maySee(item))
  }

  /** Could this principal delete `id` itself? Eviction on its behalf may only remove such images. */
  mayDelete (id: string): boolean {
    return this !== Principal.none && this.has('write') && this.mayTouch(id)
  }

  /** Store-wide figures (counts, memory, cluster membership) for admin tokens and tokens for every id. */
  get seesStoreWide (): boolean {
    return this !== Principal.none && (this.scopes.has('admin') || (this.patterns === null && this.has('read')))
  }

  /**
   * Throw PXP_ERR_FORBIDDEN unless the principal has `scope` (and, with `id`, may touch it). Checked before
   * the store is consulted, so the answer never depends on whether the image exists.
   */
  assert (scope: Scope, id?: string): void {
    if (this === Principal.none) throw pxpError('PXP_ERR_UNAUTHORIZED')
    if (!this.has(scope)) throw pxpError('PXP_ERR_FORBIDDEN', `this token lacks the ${scope} scope`)
    if (id !== undefined && !this.mayTouch(id)) throw pxpError('PXP_ERR_FORBIDDEN', 'this token is limited to other ids')
  }

  /** For creates without an id: a token limited to some ids must name one, or it could not read it back. */
  assertMayCreate (id: string | undefined): void {
    this.assert('write', id)
    if (id === undefined && this.patterns !== null) {
      throw pxpError('PXP_ERR_FORBIDDEN', 'a token limited to some ids must name the id of the image it creates')
    }
  }
}

interface Entry {
  readonly digest: Buffer
  readonly principal: Principal
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** The configured tokens. Empty: authentication is off and every caller is Principal.unrestricted. */
export class TokenRegistry {
  private readonly entries: readonly Entry[]

  constructor (specs: readonly TokenSpec[] = []) {
    const seen = new Set<string>()
    this.entries = specs.map((spec, i) => {
      const checked = validateTokenSpec(spec, i)
      if (seen.has(checked.token)) throw pxpError('PXP_ERR_VALIDATION', `option tokens[${i}] repeats an earlier token`)
      seen.add(checked.token)
      const patterns = checked.ids === undefined
        ? null
        : checked.ids.map((p) => p.endsWith('/*') ? { prefix: true, text: p.slice(0, -1) } : { prefix: false, text: p })
      return { digest: digest(checked.token), principal: new Principal(checked.name ?? `token-${i + 1}`, new Set(checked.scopes), patterns) }
    })
  }

  get enabled (): boolean { return this.entries.length > 0 }
  get size (): number { return this.entries.length }

  /**
   * The principal a presented token stands for, or null. Digests of equal length are compared with
   * timingSafeEqual against every entry, without stopping at the first match.
   */
  authenticate (presented: string): Principal | null {
    const candidate = digest(presented)
    let found: Principal | null = null
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, candidate) && found === null) found = entry.principal
    }
    return found
  }
}

/** The token in an `Authorization: Bearer …` header; undefined if there is none, null if malformed. */
export function bearerToken (header: string | undefined): string | null | undefined {
  if (header === undefined || header === '') return undefined
  const m = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header)
  return m === null ? null : m[1]
}

function validateTokenSpec (spec: TokenSpec, i: number): TokenSpec {
  const where = `option tokens[${i}]${typeof spec?.name === 'string' ? ` (${JSON.stringify(spec.name)})` : ''}`
  if (typeof spec !== 'object' || spec === null) throw pxpError('PXP_ERR_VALIDATION', `${where} must be { token, scopes, ids?, name? }`)
  const { token, scopes, ids, name } = spec
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || token.length > 512 || !TOKEN_RE.test(token)) {
    throw pxpError('PXP_ERR_VALIDATION', `${where}: a token is ${MIN_TOKEN_LENGTH}-512 characters without whitespace, ':' or ';' (try: openssl rand -hex 24)`)
  }
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => (SCOPES as readonly string[]).includes(s))) {
    throw pxpError('PXP_ERR_VALIDATION', `${where}: scopes must be a non-empty list of ${SCOPES.join(', ')}, got ${JSON.stringify(scopes)}`)
  }
  if (ids !== undefined) {
    if (!Array.isArray(ids)) throw pxpError('PXP_ERR_VALIDATION', `${where}: ids must be a list such as ["cam1/*"]`)
    if (ids.length === 0) throw pxpError('PXP_ERR_VALIDATION', EMPTY_IDS(where))
    for (const p of ids) {
      // `cam1/*` or an exact id; the part before `/*` must itself be a valid id, so it names a namespace.
      const base = typeof p === 'string' && p.endsWith('/*') ? p.slice(0, -2) : p
      if (typeof base !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/.test(base)) {
        throw pxpError('PXP_ERR_VALIDATION', `${where}: id pattern ${JSON.stringify(p)} must be an id or "prefix/*"`)
      }
    }
  }
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 64)) {
    throw pxpError('PXP_ERR_VALIDATION', `${where}: name must be 1-64 characters`)
  }
  return spec
}

/** Why `"ids": []` is refused rather than read as "every id" (as it once was) or "no id". */
const EMPTY_IDS = (where: string): string =>
  `${where}: ids is empty, which would grant no image; leave ids out for every id, or list patterns such as ["cam1/*"]`

/**
 * Parse `TOKEN:SCOPES[:IDS]` as given to `--token` and in PIXELPORT_TOKENS (specs separated by `;` or
 * whitespace): `s3cr3t…:read,write:cam1/*,cam2/main`.
 */
export function parseTokenSpecs (text: string, source: string): TokenSpec[] {
  return text.split(/[;\s]+/).filter((s) => s !== '').map((item) => {
    const [token, scopes, ids, ...rest] = item.split(':')
    if (scopes === undefined || rest.length > 0) {
      throw pxpError('PXP_ERR_VALIDATION', `${source}: expected TOKEN:SCOPES[:IDS], e.g. "$(openssl rand -hex 24):read,write:cam1/*"`)
    }
    const idList = ids?.split(',').filter((s) => s !== '')
    if (idList !== undefined && idList.length === 0) throw pxpError('PXP_ERR_VALIDATION', EMPTY_IDS(`${source}: TOKEN:${scopes}:`))
    return {
      token,
      scopes: scopes.split(',').filter((s) => s !== '') as Scope[],
      ...(idList === undefined ? {} : { ids: idList }),
    }
  })
}

/** A token file: JSON `[{ token, scopes, ids?, name? }]`, or lines of `TOKEN:SCOPES[:IDS]` (lines starting with `#` are comments). */
export function parseTokenFile (text: string, file: string): TokenSpec[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('[')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch (err) {
      throw pxpError('PXP_ERR_VALIDATION', `${file}: not valid JSON (${(err as Error).message})`)
    }
    if (!Array.isArray(parsed)) throw pxpError('PXP_ERR_VALIDATION', `${file}: expected a JSON list of tokens`)
    parsed.forEach((entry: unknown, i) => {
      const { ids, name } = (typeof entry === 'object' && entry !== null ? entry : {}) as { ids?: unknown, name?: unknown }
      if (Array.isArray(ids) && ids.length === 0) {
        throw pxpError('PXP_ERR_VALIDATION', EMPTY_IDS(`${file}: entry ${i + 1}${typeof name === 'string' ? ` (${JSON.stringify(name)})` : ''}`))
      }
    })
    return parsed as TokenSpec[]
  }
  const lines = trimmed.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  return lines.flatMap((line, i) => parseTokenSpecs(line, `${file}:${i + 1}`))
}
