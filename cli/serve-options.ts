/**
 * `pixelport serve`'s flags, environment variables and `--help`, all built from the server's options table
 * (server/options-table.ts): a flag is declared there once, with its variable, default, parser and help.
 */
import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { parseTokenFile, parseTokenSpecs } from '../server/auth/tokens.js'
import { flagRow, OPTION_TABLE, type OptionRow } from '../server/options-table.js'
import type { ServerOptions } from '../server/options.js'
import { usage } from './failure.js'
import { parseArgsMessage } from './suggest.js'

type ParseOptions = NonNullable<ParseArgsConfig['options']>

/** The rows `pixelport serve` takes, in help order. */
export const SERVE_ROWS: readonly OptionRow[] = OPTION_TABLE.filter((r) => r.flag !== undefined)

/** `parseArgs` config: a string flag for every row with a value, a switch for the others, plus -h. */
export const SERVE_OPTIONS: ParseOptions = Object.fromEntries([
  ...SERVE_ROWS.map((r) => [r.flag!, { type: r.arg === undefined ? 'boolean' : 'string', ...(r.multiple === true ? { multiple: true } : {}) }]),
  ['help', { type: 'boolean', short: 'h' }],
])

/** Help lines of one row: the flag in a 25-column gutter (or alone on its line when longer), then its text. */
function helpLines (row: OptionRow): string[] {
  const name = `--${row.flag!}${row.arg === undefined ? '' : ' ' + row.arg}`
  const text = row.help.split('\n')
  if (row.env !== undefined) {
    // The variable in brackets ends the last line, or gets a line of its own where it would pass 110 columns.
    const env = `[${row.envHelp ?? row.env}]`
    if (25 + text[text.length - 1].length + 1 + env.length > 110) text.push(env)
    else text[text.length - 1] += ' ' + env
  }
  if (name.length > 22) return [`  ${name}`, ...text.map((l) => ' '.repeat(25) + l)]
  return [`  ${name.padEnd(22)} ${text[0]}`, ...text.slice(1).map((l) => ' '.repeat(25) + l)]
}

export const SERVE_HELP = `Usage: pixelport serve [options]

Options (environment variable in brackets):
${SERVE_ROWS.flatMap(helpLines).join('\n')}
  -h, --help             this text
`

/** What `pixelport serve` does besides createServer's options. */
export interface ServeRun {
  options: ServerOptions
  keep: boolean
  demo: boolean
  workers: string[]
  threads: number
  workerRestarts: number
  /** Secrets given as flags (any user of the host sees them in ps): warn. */
  tokenFlags: boolean
  clusterTokenFlag: boolean
}

type Values = Record<string, string | boolean | string[] | undefined>
type Env = Readonly<Record<string, string | undefined>>

/** The options of `argv` (flags first, then their environment variables), or 'help'. Throws a usage error. */
export function parseServeArgs (argv: string[], env: Env = process.env): ServeRun | 'help' {
  let values: Values
  try {
    values = parseArgs({ args: argv, options: SERVE_OPTIONS, strict: true }).values as Values
  } catch (err) {
    throw usage(parseArgsMessage(err as Error, SERVE_OPTIONS), 'serve')
  }
  if (values.help === true) return 'help'
  const read = reader(values, env)
  const options: ServerOptions = {}
  const set = options as Record<string, unknown>
  // Plain options: one flag (or variable) sets one createServer option, parsed by its row.
  for (const row of SERVE_ROWS) {
    if (row.option === undefined || row.option.includes('.') || SPECIAL.has(row.option)) continue
    const value = read(row)
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue
    set[row.option] = typeof value === 'string' && row.parse !== undefined ? row.parse(value, row.flag!) : value
  }
  if (read(flagRow('log')) === true) options.logger = true
  const tokens = readTokens(values, env)
  if (tokens.length > 0) options.tokens = tokens
  readCluster(options, read, values)
  readShm(options, read)
  const keep = read(flagRow('keep')) === true
  if ((options.shm as { recover?: boolean } | undefined)?.recover === true || keep) {
    if (options.shm === undefined) throw new Error('--recover and --keep need --shm')
  }
  return {
    options,
    keep,
    demo: read(flagRow('demo')) === true,
    workers: (read(flagRow('worker')) as string[] | undefined) ?? [],
    threads: count(read, 'threads'),
    workerRestarts: count(read, 'worker-restarts'),
    tokenFlags: ((values.token as string[] | undefined) ?? []).length > 0,
    clusterTokenFlag: values['cluster-token'] !== undefined,
  }
}

/** createServer options put together from several rows, below. */
const SPECIAL = new Set(['tokens', 'shm', 'logger'])

type Read = (row: OptionRow) => string | boolean | string[] | undefined

/**
 * A row's value: its flag, else its environment variable (an empty one counts as unset; a switch's is on
 * when it is 1; several values are split on the row's separator).
 */
function reader (values: Values, env: Env): Read {
  return (row) => {
    const flag = values[row.flag!]
    if (flag !== undefined) return flag
    const text = row.env === undefined ? undefined : env[row.env]
    if (text === undefined || text === '') return undefined
    if (row.arg === undefined) return text === '1' ? true : undefined
    if (row.multiple === true) return text.split(row.envSplit ?? ',').map((s) => s.trim()).filter((s) => s !== '')
    return text
  }
}

/** A CLI-only count, or its default from the table. */
function count (read: Read, flag: string): number {
  const row = flagRow(flag)
  const text = read(row)
  return typeof text === 'string' ? row.parse!(text, flag) : row.default as number
}

/** PIXELPORT_TOKENS, every --token and the --token-file (or PIXELPORT_TOKEN_FILE), together. */
function readTokens (values: Values, env: Env): NonNullable<ServerOptions['tokens']> {
  const tokens = [
    ...parseTokenSpecs(env.PIXELPORT_TOKENS ?? '', 'PIXELPORT_TOKENS'),
    ...((values.token as string[] | undefined) ?? []).flatMap((spec) => parseTokenSpecs(spec, '--token')),
  ]
  const file = (values['token-file'] as string | undefined) ?? env.PIXELPORT_TOKEN_FILE
  if (file !== undefined && file !== '') tokens.push(...parseTokenFile(readFileSync(file, 'utf8'), file))
  return tokens
}

/** --cluster URL and the flags that only mean something with it. */
function readCluster (options: ServerOptions, read: Read, values: Values): void {
  const redis = read(flagRow('cluster')) as string | undefined
  const rest = ['advertise', 'node-id', 'cluster-token'].map((f) => [flagRow(f), read(flagRow(f)) as string | undefined] as const)
  if (redis === undefined) {
    // Flags only: a variable left in the environment without PIXELPORT_CLUSTER is not worth refusing to start.
    if (rest.some(([row]) => values[row.flag!] !== undefined)) {
      throw new Error('--advertise, --node-id and --cluster-token need --cluster')
    }
    return
  }
  const cluster: NonNullable<ServerOptions['cluster']> & Record<string, string> = { redis }
  for (const [row, value] of rest) if (value !== undefined) cluster[row.option!.slice('cluster.'.length)] = value
  options.cluster = cluster
}

/** --shm, or any of its own flags (which imply it). */
function readShm (options: ServerOptions, read: Read): void {
  const mode = read(flagRow('shm-mode')) as string | undefined
  const prefix = read(flagRow('shm-prefix')) as string | undefined
  if (read(flagRow('shm')) !== true && mode === undefined && prefix === undefined) {
    if (read(flagRow('recover')) === true) throw new Error('--recover and --keep need --shm')
    return
  }
  const modeRow = flagRow('shm-mode')
  options.shm = { mode: mode === undefined ? modeRow.default as number : modeRow.parse!(mode, 'shm-mode') }
  if (prefix !== undefined) options.shm.prefix = prefix
  if (read(flagRow('recover')) === true) options.shm.recover = true
}
