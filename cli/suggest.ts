/**
 * "Did you mean …?" for mistyped commands and flags, as git and npm do: the closest known word by edit
 * distance, offered only when it is close enough to be a likely typo.
 */

/** Levenshtein distance (insertions, deletions, substitutions), with adjacent swaps counting as one edit. */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * The candidate closest to `word`, or undefined when none is within a third of the word's length (at
 * least 1, at most 3 edits): "sevre" → "serve", "--prot" → "--port", but "xyz" → nothing.
 */
export function closest (word: string, candidates: Iterable<string>): string | undefined {
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)))
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= allowed ? best : undefined
}

/** ` (did you mean "X"?)` or nothing. */
export function didYouMean (word: string, candidates: Iterable<string>): string {
  const match = closest(word, candidates)
  return match === undefined ? '' : `; did you mean ${JSON.stringify(match)}?`
}

/**
 * Rewrite an error from `util.parseArgs` into one line that names the flag and, for an unknown one, the
 * closest known flag. parseArgs' own text suggests '--' for positionals starting with '-', which is no
 * help for a typo.
 */
export function parseArgsMessage (err: Error & { code?: string }, options: Readonly<Record<string, unknown>>): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'(-[^']*)'/.exec(err.message)?.[1] ?? '?'
    const known = Object.keys(options).map((name) => `--${name}`)
    const name = flag.split('=')[0]
    return `unknown option ${name}${didYouMean(name, known)}`
  }
  return err.message
}
