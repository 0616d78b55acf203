/**
 * Settings shared by the property and fuzz tests: a fixed seed by default (so a failure reproduces), printed
 * with the test; `PIXELPORT_FUZZ_SEED` picks another seed and `PIXELPORT_FUZZ_RUNS` multiplies the runs,
 * e.g. `PIXELPORT_FUZZ_SEED=$RANDOM PIXELPORT_FUZZ_RUNS=20 npx tap test/fuzz/`.
 */
import type { Test } from 'tap'
import { ERRORS, PixelportError } from '../../protocol/errors.js'

/** The seed every property and fuzz test starts from unless PIXELPORT_FUZZ_SEED says otherwise. */
export const DEFAULT_SEED = 0x5eed

export interface FuzzSettings {
  seed: number
  /** Multiplier for the number of runs (1 by default). */
  scale: number
  /** `runs` scaled by PIXELPORT_FUZZ_RUNS. */
  runs: (base: number) => number
}

/** Read the seed and scale from the environment and print them as a TAP comment. */
export function fuzzSettings (t: Test): FuzzSettings {
  const seedText = process.env.PIXELPORT_FUZZ_SEED
  const seed = seedText !== undefined && seedText !== '' ? Number(seedText) | 0 : DEFAULT_SEED
  const scaleText = process.env.PIXELPORT_FUZZ_RUNS
  const scale = scaleText !== undefined && Number(scaleText) > 0 ? Number(scaleText) : 1
  t.comment(`fuzz seed ${seed} (PIXELPORT_FUZZ_SEED), runs x${scale} (PIXELPORT_FUZZ_RUNS)`)
  return { seed, scale, runs: (base) => Math.max(1, Math.round(base * scale)) }
}

/** True when `err` is a PixelportError whose code is in the registry (and, if given, one of `codes`). */
export function isRegistryError (err: unknown, codes?: readonly string[]): err is PixelportError {
  return err instanceof PixelportError && Object.hasOwn(ERRORS, err.code) &&
    (codes === undefined || codes.includes(err.code))
}

/**
 * Run `fn` and return what it threw (undefined if nothing). Anything thrown that is not a registry error
 * is rethrown with a clear message, so a property fails on it with the culprit named.
 */
export function registryErrorOf (fn: () => unknown, codes?: readonly string[]): PixelportError | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    if (isRegistryError(err, codes)) return err
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    throw new Error(`threw something other than a registry error${codes !== undefined ? ` in [${codes.join(', ')}]` : ''}: ${(err as { code?: string })?.code ?? ''} ${what}`)
  }
}
