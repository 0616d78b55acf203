/**
 * Build the live viewer (viewer/) into dist/viewer/ with esbuild: one minified ES module bundle (the page
 * and the `pixelport/client` sources it imports), one stylesheet, their source maps, and index.html
 * pointing at them. Asset names carry a content hash, so the server can let browsers cache them forever.
 *
 *   node scripts/build-viewer.mjs            (part of `npm run build`)
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const outdir = path.join(root, 'dist', 'viewer')

/** Replace `file` in one step: a server reading it meanwhile gets the old or the new bytes, never half. */
async function writeAtomically (file, contents) {
  const temporary = `${file}.tmp-${process.pid}`
  await writeFile(temporary, contents)
  await rename(temporary, file)
}

export async function buildViewer ({ quiet = false } = {}) {
  await mkdir(outdir, { recursive: true })
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { viewer: 'viewer/viewer.ts', style: 'viewer/style.css' },
    outdir,
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox113', 'safari16.4'],
    // The client loads `ws` only in Node.js without a platform WebSocket; browsers never reach that import.
    external: ['ws'],
    tsconfig: 'viewer/tsconfig.json',
    legalComments: 'none',
    metafile: true,
    write: false,
    logLevel: 'warning',
  })
  const names = {}
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    if (output.entryPoint === undefined) continue
    names[path.basename(file).endsWith('.css') ? 'STYLE' : 'SCRIPT'] = path.basename(file)
  }
  // Assets first, the page that names them last, then the previous build's assets: a running server
  // always has a complete page to serve.
  const written = new Set(['index.html'])
  for (const file of result.outputFiles) {
    await writeAtomically(file.path, file.contents)
    written.add(path.basename(file.path))
  }
  const template = await readFile(path.join(root, 'viewer', 'index.html'), 'utf8')
  await writeAtomically(path.join(outdir, 'index.html'), template.replace(/%(SCRIPT|STYLE)%/g, (_, key) => names[key]))
  // Remove only older bundles of ours: tsc also compiles viewer/*.ts into this folder for the tests.
  for (const name of await readdir(outdir)) {
    if (!written.has(name) && /^(viewer|style)-[A-Z0-9]+\.(js|css)(\.map)?$/.test(name)) await rm(path.join(outdir, name), { force: true })
  }
  if (!quiet) {
    const sizes = result.outputFiles
      .filter((file) => !file.path.endsWith('.map'))
      .map((file) => `${path.basename(file.path)} ${(file.contents.byteLength / 1024).toFixed(1)} KiB`)
    process.stdout.write(`viewer: dist/viewer/ (index.html, ${sizes.join(', ')})\n`)
  }
  return names
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildViewer()
}
