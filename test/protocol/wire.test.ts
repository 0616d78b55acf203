/**
 * One wire schema: HTTP routes, WebSocket messages and their types share the field schemas of
 * protocol/wire/fields.ts. The descriptor is one object everywhere, and what the server really sends (over
 * HTTP, over the WebSocket, in the OpenAPI document) fits it, generation included (a uint32).
 */
import { Ajv } from 'ajv'
import t from 'tap'
import { DescriptorSchema, Generation, specFields, UINT32_MAX } from '../../protocol/wire/fields.js'
import { CLIENT_MESSAGE_SCHEMAS } from '../../protocol/wire/client-messages.js'
import { SERVER_MESSAGE_SCHEMAS } from '../../protocol/wire/server-messages.js'
import { PROTOCOL_VERSION } from '../../protocol/messages.js'
import { descriptorSchema as httpDescriptorSchema, listSchema, requestSchemas } from '../../server/http/schemas.js'
import { resolveOptions } from '../../server/options.js'
import { call } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { WireClient } from '../helpers/wire-client.js'

const ajv = new Ajv({ strict: true, allErrors: true })
ajv.addKeyword({ keyword: 'binary', schemaType: 'boolean', validate: (w: boolean, d: unknown) => !w || d instanceof Uint8Array, errors: false })
const validDescriptor = ajv.compile(DescriptorSchema)

t.test('HTTP and WebSocket use the same descriptor schema object', async (t) => {
  const ws = SERVER_MESSAGE_SCHEMAS
  t.equal(httpDescriptorSchema, DescriptorSchema, 'HTTP responses')
  t.equal(ws.descriptor.properties.descriptor, DescriptorSchema, 'WebSocket descriptor replies')
  t.equal(ws.event.properties.descriptor, DescriptorSchema, 'WebSocket events')
  t.equal(ws.frame.properties.descriptor, DescriptorSchema, 'WebSocket frames')
  t.equal(ws.images.properties.images.items, DescriptorSchema, 'WebSocket list pages')
  t.equal(listSchema.properties.images.items, DescriptorSchema, 'HTTP list pages')
  // The drift that was: `natural` over HTTP, uint32 over the WebSocket. Both say what the server keeps.
  t.equal((DescriptorSchema as unknown as { properties: Record<string, unknown> }).properties.generation, Generation)
  t.match(Generation, { type: 'integer', minimum: 0, maximum: UINT32_MAX })
  t.equal(ws.event.properties.generation, Generation)
  t.equal(ws.frame.properties.generation, Generation)
})

t.test('the image spec: one set of fields for HTTP POST /images and WebSocket create/put', async (t) => {
  const http = requestSchemas(resolveOptions({})).createBody.properties
  const shared = specFields(http.width)
  for (const schemas of [http, CLIENT_MESSAGE_SCHEMAS.create.properties, CLIENT_MESSAGE_SCHEMAS.put.properties]) {
    for (const field of ['mode', 'shape', 'typestr', 'layout', 'readonly', 'frames'] as const) {
      t.same(schemas[field], shared[field], field)
    }
  }
})

t.test('real descriptors from the server fit the schema, and a generation past uint32 does not', async (t) => {
  const { url } = await startServer(t)
  const created = await call(url, 'POST', '/images', { width: 8, height: 4, mode: 'RGB', id: 'wire/block' })
  const lines = await call(url, 'POST', '/images', { shape: [6, 5], typestr: '<u2', layout: 'lines', id: 'wire/lines' })
  const view = await call(url, 'POST', '/images/wire%2Fblock/views', { x: 1, y: 1, width: 4, height: 2, id: 'wire/view' })
  const page = await call(url, 'GET', '/images')
  const descriptors = [created.body, lines.body, view.body, ...page.body.images]
  t.equal(descriptors.length, 6)
  for (const d of descriptors) t.ok(validDescriptor(d), `${d.id} (${d.layout}${d.view !== null ? ', a view' : ''}): ${ajv.errorsText(validDescriptor.errors)}`)

  const client = await WireClient.connect(t, url)
  t.equal((await client.request({ op: 'hello', protocol: PROTOCOL_VERSION })).op, 'welcome')
  const described = await client.request({ op: 'describe', id: 'wire/lines' })
  t.ok(validDescriptor(described.descriptor), 'a WebSocket descriptor')
  t.same(described.descriptor, lines.body, 'the same descriptor over both transports')
  t.same(client.invalid, [], 'every message the server sent fits its schema')

  t.notOk(validDescriptor({ ...created.body, generation: 2 ** 32 }), 'generation 2^32 is out of range')
  t.notOk(validDescriptor({ ...created.body, generation: -1 }))
  t.ok(validDescriptor({ ...created.body, generation: UINT32_MAX }), 'the largest generation')
})

t.test('the OpenAPI document shows the shared schemas', async (t) => {
  const { url } = await startServer(t)
  const doc = await (await fetch(`${url}/docs/json`)).json() as any
  const response = doc.paths['/images/{id}'].get.responses['200'].content['application/json'].schema
  t.match(response.properties.generation, { type: 'integer', minimum: 0, maximum: UINT32_MAX })
  const ai = response.properties.__array_interface__.properties
  t.equal(ai.version.const ?? ai.version.enum?.[0], 3, 'version 3 (OpenAPI 3.0 writes a const as an enum)')
  t.match(ai.descr, { type: 'array' })
  const create = doc.paths['/images'].post.requestBody.content['application/json'].schema
  t.match(create.properties.layout, { enum: ['block', 'lines'] })
})
