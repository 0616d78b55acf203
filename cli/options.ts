/**
 * Flags every client command shares: where the server is and who is asking.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { usage } from './failure.js'
import type { Io } from './io.js'
import { parseArgsMessage } from './suggest.js'

export interface Connection {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:8080 */
  url: string
  token?: string
  /** Where the token came from, for messages: '--token' or 'PIXELPORT_TOKEN'. */
  tokenSource?: string
}

export const COMMON_HELP = `Common options (also accepted before the command: pixelport --url URL ls):
  --url URL        server (default http://127.0.0.1:8080) [PIXELPORT_URL]
  --token TOKEN    sent as Authorization: Bearer TOKEN [PIXELPORT_TOKEN]
  -h, --help       this text
`

type Options = NonNullable<ParseArgsConfig['options']>

const COMMON: Options = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
  connection: Connection
}

/** Parse `argv` with the common flags plus `options`; unknown flags are a usage error (exit 2). */
export function parseCommand (command: string, argv: string[], io: Io, options: Options): Parsed {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw usage(parseArgsMessage(err as Error, { ...COMMON, ...options }), command)
  }
  const values = parsed.values as Parsed['values']
  const url = (typeof values.url === 'string' ? values.url : undefined) ?? io.env.PIXELPORT_URL ?? 'http://127.0.0.1:8080'
  if (!/^https?:\/\/[^/]/.test(url)) throw usage(`--url: expected http://host:port, got ${JSON.stringify(url)}`, command)
  const flagToken = typeof values.token === 'string' ? values.token : undefined
  const token = flagToken ?? io.env.PIXELPORT_TOKEN
  const connection: Connection = { url: url.replace(/\/+$/, '') }
  if (token !== undefined && token !== '') {
    connection.token = token
    connection.tokenSource = flagToken !== undefined ? '--token' : 'PIXELPORT_TOKEN'
  }
  return { values, positionals: parsed.positionals, connection }
}
