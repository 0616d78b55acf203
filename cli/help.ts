/**
 * The top-level help (`pixelport --help`, `pixelport help [COMMAND]`) and `--version`: commands first, as
 * git and npm list them; each command's own options live in its --help.
 */
import { readFileSync } from 'node:fs'

/** Every command with its one-line synopsis, in the order the help lists them. */
export const COMMANDS: ReadonlyArray<readonly [name: string, synopsis: string, summary: string]> = [
  ['serve', 'serve [options]', 'start a server (npm start runs "serve --demo")'],
  ['put', 'put FILE|- [--id ID]', 'upload a PNG/JPEG/WebP/TIFF, or raw bytes with --shape/--typestr; --replace'],
  ['get', 'get ID -o FILE|-', 'download as .png/.jpg/.webp/.tiff, or .raw/.bin bytes (--format for -)'],
  ['info', 'info ID', 'an image\'s descriptor: shape, typestr, mode, generation, layout'],
  ['ls', 'ls [--cluster]', 'list images: id, shape (h, w, c), typestr, mode, size WxH, generation'],
  ['rm', 'rm ID...', 'delete images'],
  ['watch', 'watch [ID...]', 'live generations and frames per second'],
  ['help', 'help [COMMAND]', 'this text, or a command\'s'],
]

export const MAIN_HELP = `Usage: pixelport [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]

Commands:
${COMMANDS.map(([, synopsis, summary]) => `  ${synopsis.padEnd(22)} ${summary}`).join('\n')}

Global options (before the command; each command also takes them after it):
  --url URL              server (default http://127.0.0.1:8080) [PIXELPORT_URL]
  --token TOKEN          sent as Authorization: Bearer TOKEN [PIXELPORT_TOKEN]
  --json                 machine-readable output (ls, info)
  -V, --version          print the version
  -h, --help             this text

Exit codes: 0 ok, 1 the server refused, 2 usage error, 3 server unreachable.
"pixelport help COMMAND" or "pixelport COMMAND --help" shows a command's options.
`

/** The package's version, from the package.json above this file (src: .., built: ../..). */
export function version (): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'pixelport' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // not this one: try the next level up
    }
  }
  return 'unknown'
}
