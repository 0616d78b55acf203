/**
 * The public API is what README "Public API" lists, no more and no less. Each entry point is imported from
 * the built package by its name (`pixelport/worker`, resolved through package.json `exports` as a user's
 * import is): its runtime exports must be the table's values, and its type declarations (the `types` file of
 * the same export, read with the TypeScript compiler) must export the values and the `type` names.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import ts from 'typescript'
import { repoPath } from '../helpers/paths.js'

interface Documented { values: string[], types: string[] }

/** README's table for each entry point: the backticked names of each row's first cell. */
function documentedApi (): Map<string, Documented> {
  const readme = readFileSync(repoPath('README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('\n## Public API\n'), readme.indexOf('\n## Design\n'))
  const api = new Map<string, Documented>()
  let current: Documented | null = null
  for (const line of section.split('\n')) {
    const heading = /^\*\*`(pixelport(?:\/[a-z]+)?)`\*\*/.exec(line)
    if (heading !== null) {
      current = { values: [], types: [] }
      api.set(heading[1], current)
      continue
    }
    if (current === null || !line.startsWith('| `')) continue
    for (const [, name] of line.split('|')[1].matchAll(/`([^`]+)`/g)) {
      if (name.startsWith('type ')) current.types.push(name.slice(5))
      else current.values.push(name)
    }
  }
  return api
}

const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { exports: Record<string, { types: string }> }
const documented = documentedApi()
const sorted = (names: Iterable<string>): string[] => [...new Set(names)].sort()

t.test('README documents every entry point of package.json', async (t) => {
  t.same(sorted(documented.keys()), sorted(Object.keys(pkg.exports).map((key) => key === '.' ? 'pixelport' : `pixelport${key.slice(1)}`)))
})

/** The names a declaration file exports, types and values alike (through its re-exports). */
function declaredExports (file: string): string[] {
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, types: [], skipLibCheck: true, noEmit: true })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  const symbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
  if (symbol === undefined) throw new Error(`${file}: no module symbol`)
  return checker.getExportsOfModule(symbol).map((s) => s.name)
}

for (const [name, api] of documented) {
  t.test(`${name} exports what README "Public API" lists`, async (t) => {
    const specifier: string = name           // a string, so tsc does not resolve it: dist/ may not exist yet
    const module = await import(specifier) as Record<string, unknown>
    t.same(sorted(Object.keys(module)), sorted(api.values), 'runtime exports')
    const key = name === 'pixelport' ? '.' : `./${name.slice('pixelport/'.length)}`
    t.same(sorted(declaredExports(repoPath(pkg.exports[key].types))), sorted([...api.values, ...api.types]), 'declared exports')
  })
}
