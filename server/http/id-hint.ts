/**
 * A 404 for `/images/demo/gradient`: an id holding "/" that was not percent-encoded, so no route matched.
 * The hint names the URL that would have matched, for every route shape an id appears in.
 */

/** Route suffixes after `/images/:id`, with the methods that take them. */
const SHAPES: ReadonlyArray<{ suffix: RegExp, methods: ReadonlySet<string> }> = [
  { suffix: /\/data$/, methods: new Set(['GET', 'HEAD', 'PUT']) },
  { suffix: /\/views$/, methods: new Set(['POST']) },
  { suffix: /\.(png|jpeg|jpg|webp|tiff|tif)$/, methods: new Set(['GET', 'HEAD']) },
]

/**
 * `: an id that contains "/" is percent-encoded in the path: GET /images/demo%2Fgradient` when `path` looks
 * like an image route whose id has an unencoded "/", else ''.
 */
export function unencodedIdHint (method: string, path: string): string {
  if (!path.startsWith('/images/')) return ''
  let rest = path.slice('/images/'.length)
  let suffix = ''
  for (const shape of SHAPES) {
    const m = shape.suffix.exec(rest)
    if (m !== null && shape.methods.has(method)) {
      suffix = m[0]
      rest = rest.slice(0, -suffix.length)
      break
    }
  }
  const segments = rest.split('/')
  if (segments.length < 2 || segments.some((s) => s === '')) return ''
  return `: an id that contains "/" is percent-encoded in the path (%2F): ${method} /images/${segments.join('%2F')}${suffix}`
}
