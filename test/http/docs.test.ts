/**
 * The OpenAPI document at /docs/json, generated from the route schemas, and Swagger UI at /docs.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { repoPath } from '../helpers/paths.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const

type Json = any

/** Every `$ref` in `node`, with where it was found. */
function refs (node: Json, at = '#'): Array<[string, string]> {
  if (node === null || typeof node !== 'object') return []
  const found: Array<[string, string]> = []
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') found.push([value, at])
    else found.push(...refs(value, `${at}/${key}`))
  }
  return found
}

function resolve (doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined
  return ref.slice(2).split('/').reduce((node: Json, part) => node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc)
}

t.test('/docs/json is an OpenAPI 3 document of every HTTP route', async (t) => {
  const { url } = await startServer(t)
  const res = await fetch(`${url}/docs/json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const doc = await res.json() as Json

  // The document's own structure (OpenAPI 3.0: the fields every document and operation must have).
  t.match(doc.openapi, /^3\.\d+\.\d+$/)
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string }
  t.match(doc.info, { title: 'Pixelport', version: pkg.version })
  t.type(doc.paths, 'object')
  const declaredTags = new Set((doc.tags as Array<{ name: string }>).map((tag) => tag.name))
  const operationIds = new Set<string>()
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    t.ok(path.startsWith('/'), `${path} is absolute`)
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
    for (const method of METHODS) {
      const op = item[method]
      if (op === undefined) continue
      const where = `${method.toUpperCase()} ${path}`
      t.ok(Object.keys(op.responses ?? {}).length > 0, `${where} has responses`)
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        t.match(status, /^([1-5]\d\d|[1-5]XX|default)$/, `${where} status ${status}`)
        t.type(response.description, 'string', `${where} ${status} has a description`)
      }
      const params: Json[] = op.parameters ?? []
      for (const p of params) {
        t.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${where} parameter ${p.name} in ${p.in}`)
        if (p.in === 'path') t.equal(p.required, true, `${where} path parameter ${p.name} is required`)
      }
      for (const name of templated) {
        t.ok(params.some((p) => p.in === 'path' && p.name === name), `${where} declares {${name}}`)
      }
      if (op.operationId !== undefined) {
        t.notOk(operationIds.has(op.operationId), `operationId ${op.operationId} unique`)
        operationIds.add(op.operationId)
      }
      t.type(op.summary, 'string', `${where} has a summary`)
      t.ok((op.tags ?? []).length > 0 && op.tags.every((tag: string) => declaredTags.has(tag)), `${where} has declared tags`)
    }
  }
  for (const [ref, at] of refs(doc)) t.ok(resolve(doc, ref) !== undefined, `${ref} (at ${at}) resolves`)

  // The routes of the HTTP API, by method and path.
  const expected: Array<[string, string]> = [
    ['post', '/images'], ['get', '/images'], ['get', '/images/{id}'], ['delete', '/images/{id}'],
    ['get', '/images/{id}/data'], ['put', '/images/{id}/data'], ['post', '/images/{id}/views'],
    ['get', '/images/{id}.png'], ['get', '/images/{id}.jpeg'], ['get', '/images/{id}.webp'], ['get', '/images/{id}.tiff'],
    ['get', '/stats'], ['get', '/healthz'], ['get', '/metrics'],
  ]
  for (const [method, path] of expected) t.ok(doc.paths[path]?.[method] !== undefined, `${method.toUpperCase()} ${path} documented`)
  t.notOk('/images/{id}.jpg' in doc.paths, 'aliases are not repeated')
  t.notOk('/docs' in doc.paths, 'the docs do not document themselves')

  // What the schemas say arrives in the document.
  const create = doc.paths['/images'].post
  t.same(Object.keys(create.requestBody.content).sort(),
    ['application/json', 'application/octet-stream', 'image/jpeg', 'image/png', 'image/tiff', 'image/webp'])
  t.ok(create.parameters.some((p: Json) => p.in === 'query' && p.name === 'shape'))
  const jpeg = doc.paths['/images/{id}.jpeg'].get
  t.match(jpeg.parameters.find((p: Json) => p.name === 'quality'), { in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } })
  t.same(Object.keys(jpeg.responses['200'].content), ['image/jpeg'])
  const describe = doc.paths['/images/{id}'].get
  t.same(Object.keys(describe.responses['200'].content), ['application/json', 'image/png', 'image/jpeg', 'image/webp', 'image/tiff'])
  t.match(describe.responses['200'].content['application/json'].schema, { type: 'object', required: ['id', 'mode', 'width'] })
  t.match(describe.responses['4XX'].content['application/json'].schema, { required: ['code', 'message'] })
  t.same(Object.keys(doc.paths['/metrics'].get.responses['200'].content), ['text/plain'])
})

/**
 * Every route fastify registered, as `[method, path]` in OpenAPI's spelling (`{id}`), read from
 * `printRoutes({ commonPrefix: false })`: a tree whose lines are `├── segment (GET, HEAD)`, four columns a level.
 */
function registeredRoutes (tree: string): Array<[string, string]> {
  const routes: Array<[string, string]> = []
  const prefixes: string[] = []
  for (const line of tree.split('\n')) {
    const m = /^(.*?)(?:├── |└── )(.+) \(([A-Z, ]+)\)$/.exec(line)
    if (m === null) continue
    const depth = m[1].length / 4
    const path = (depth === 0 ? '' : prefixes[depth - 1]) + m[2]
    prefixes[depth] = path
    for (const method of m[3].split(', ')) routes.push([method.toLowerCase(), path.replace(/:([A-Za-z]+)/g, '{$1}')])
  }
  return routes
}

/** Routes that are deliberately not in the document: the page, its files, the docs themselves, format aliases. */
const UNDOCUMENTED = [/^\/$/, /^\/viewer\//, /^\/docs(\/|$)/, /\.(jpg|tif)$/]

t.test('every registered route is in the document, with a declared tag and a summary', async (t) => {
  // With --cluster and --shm, so /cluster and /shm exist too.
  const redis = await startRedis(t)
  const { url, server } = await startServer(t, { shm: true, cluster: { redis: redis.url, nodeId: 'docs-a' } })
  const doc = await (await fetch(`${url}/docs/json`)).json() as Json
  const declaredTags = new Set((doc.tags as Array<{ name: string }>).map((tag) => tag.name))
  const routes = registeredRoutes(server.app.printRoutes({ commonPrefix: false }))
  const paths = new Set(routes.map(([, path]) => path))
  for (const wanted of ['/ready', '/cluster', '/shm', '/ws', '/images/{id}/data', '/metrics']) t.ok(paths.has(wanted), `${wanted} registered`)
  for (const [method, path] of routes) {
    if (method === 'head' || UNDOCUMENTED.some((re) => re.test(path))) continue
    const op = doc.paths[path]?.[method]
    const where = `${method.toUpperCase()} ${path}`
    if (op === undefined) {
      t.fail(`${where} is registered but not in /docs/json`)
      continue
    }
    t.ok(typeof op.summary === 'string' && op.summary.length > 0, `${where} has a summary`)
    t.ok((op.tags ?? []).length > 0 && op.tags.every((tag: string) => declaredTags.has(tag)), `${where} has declared tags (${op.tags})`)
  }
})

t.test('/docs serves Swagger UI; /docs/yaml the same document', async (t) => {
  const { url } = await startServer(t)
  const res = await fetch(`${url}/docs`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/html/)
  const html = await res.text()
  t.match(html, /swagger-ui/i)
  const initializer = await fetch(`${url}/docs/static/swagger-initializer.js`)
  t.equal(initializer.status, 200)
  t.match(await initializer.text(), /json/, 'the UI loads the JSON document')
  const yaml = await fetch(`${url}/docs/yaml`)
  t.equal(yaml.status, 200)
  t.match(await yaml.text(), /^openapi: 3\./m)
  // The API's error vocabulary still applies around the docs.
  const missing = await fetch(`${url}/docs/nope`)
  t.equal(missing.status, 404)
})
