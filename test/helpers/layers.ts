/**
 * The layer rules of `.dependency-cruiser.cjs`, run through dependency-cruiser's API: the same check as
 * `npm run lint:deps`, returning each violation as one line (`rule: from → to`) so a test can list them.
 */
import { createRequire } from 'node:module'
import { cruise, type IConfiguration, type ICruiseResult } from 'dependency-cruiser'
import { repoPath } from './paths.js'

const require = createRequire(import.meta.url)

/** The checked-in configuration (a CommonJS file, so both the CLI and this helper read it as it is). */
export function layerConfig (): IConfiguration {
  return require(repoPath('.dependency-cruiser.cjs')) as IConfiguration
}

/** The source folders the rules cover (cli/ and examples/ once they exist; tests and benches may import anything). */
export const LAYERED = ['protocol', 'shm', 'client', 'server', 'viewer', 'cli', 'examples']

/**
 * Cruise `folders` under `baseDir` with the layer rules; returns `rule: from → to` per violation, sorted.
 * For a cycle, `to` is the cycle's path.
 */
export async function layerViolations (baseDir: string, folders: string[], tsConfigFile = repoPath('tsconfig.json')): Promise<string[]> {
  const config = layerConfig()
  const { readFileSync } = await import('node:fs')
  const tsConfig = JSON.parse(readFileSync(tsConfigFile, 'utf8')) as { compilerOptions: Record<string, unknown> }
  const result = await cruise(folders, {
    ...config.options,
    tsConfig: undefined,
    baseDir,
    validate: true,
    ruleSet: { forbidden: config.forbidden }
  }, {}, { tsConfig: { options: tsConfig.compilerOptions } })
  const output = (typeof result.output === 'string' ? JSON.parse(result.output) : result.output) as ICruiseResult
  return output.summary.violations.map((v) => {
    const to = v.cycle !== undefined && v.cycle.length > 0 ? v.cycle.map((c) => c.name).join(' → ') : v.to
    return `${v.rule.name}: ${v.from} → ${to}`
  }).sort()
}
