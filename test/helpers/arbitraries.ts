/**
 * fast-check arbitraries shared by the property tests.
 */
import fc from 'fast-check'
import { MAX_ID_LENGTH } from '../../protocol/ids.js'

const FIRST = 'ABCXYZabcxyz0189_-'
const REST = FIRST + '.'

/** One segment by the grammar: first character not '.', then letters, digits, '.', '_', '-'. */
const segment = fc.tuple(
  fc.constantFrom(...FIRST),
  fc.array(fc.constantFrom(...REST), { maxLength: 12 }),
).map(([first, rest]) => first + rest.join(''))

/** An id by the grammar, cut (at a segment boundary) to the length bound. */
export const validId = fc.array(segment, { minLength: 1, maxLength: 12 }).map((segments) => {
  let id = segments[0].slice(0, MAX_ID_LENGTH)
  for (const s of segments.slice(1)) if (id.length + 1 + s.length <= MAX_ID_LENGTH) id += '/' + s
  return id
})

