/**
 * Pixelport's layers (README "Design"), checked by `npm run lint:deps` and by test/structure/layers.test.ts.
 * Each rule names the layer it protects; `from`/`to` paths are relative to the repository root.
 *
 *   protocol/   the wire and memory vocabulary: imports nothing of ours
 *   shm/        /dev/shm addon bindings and segment names: only protocol/
 *   client/**   never server/**      server/**   never client/**
 *   server/store/**  knows no transport (http, ws, attach, workers, cluster)
 *   viewer/     only client/ and protocol/
 *   cli/, examples/, bench/, test/  may import anything
 */
'use strict'

/** Our own source folders: anything else an import reaches is a package or a Node builtin. */
const OURS = '^(protocol|shm|client|server|viewer|cli|examples|bench|test|scripts|native)/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'protocol-imports-nothing-of-ours',
      comment: 'protocol/ is the shared vocabulary of every layer; it may import only itself.',
      severity: 'error',
      from: { path: '^protocol/' },
      to: { path: OURS, pathNot: '^protocol/' }
    },
    {
      name: 'shm-imports-only-protocol',
      comment: 'shm/ (the /dev/shm addon bindings) is used by both server and client; it may import only protocol/.',
      severity: 'error',
      from: { path: '^shm/' },
      to: { path: OURS, pathNot: '^(shm|protocol)/' }
    },
    {
      name: 'client-never-imports-server',
      comment: 'A client runs in another thread or process (or machine) than the server: it shares only protocol/ and shm/.',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: '^server/' }
    },
    {
      name: 'server-never-imports-client',
      comment: 'The server does not depend on its clients; shared code lives in protocol/ or shm/.',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^client/' }
    },
    {
      name: 'store-knows-no-transport',
      comment: 'server/store/ holds images; transports (http, ws, attach, workers, cluster) sit on top of it.',
      severity: 'error',
      from: { path: '^server/store/' },
      to: { path: '^server/(http|ws|attach|workers|cluster)/' }
    },
    {
      name: 'viewer-imports-only-client-and-protocol',
      comment: 'The viewer runs in a browser: it may use the client and the protocol, nothing else of ours.',
      severity: 'error',
      from: { path: '^viewer/' },
      to: { path: OURS, pathNot: '^(viewer|client|protocol)/' }
    },
    {
      name: 'no-circular',
      comment: 'A runtime import cycle makes load order matter. Type-only cycles (erased at build) and dynamic imports (loaded on first use, after both modules) are allowed.',
      severity: 'error',
      from: { path: '^(protocol|shm|client|server|viewer|cli|examples)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only', 'type-import', 'dynamic-import'] } }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json']
    }
  }
}
