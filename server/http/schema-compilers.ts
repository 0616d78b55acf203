/**
 * Response serializers compiled once per process, not once per server.
 *
 * fastify builds fresh fast-json-stringify serializers for every instance; with the validators
 * (validator.ts), compiling our route schemas cost about 60 ms of CPU at each `listen()`. The schemas are
 * module-level constants, the same for every server in a process, so one pool serves them all: embedders
 * that run several servers, and the test suite, which starts hundreds, compile each schema once. The
 * factory is fastify's own (@fastify/fast-json-stringify-compiler); only its lifetime changes.
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'

const serializerFactory = SerializerSelector()

type SerializerFactory = ReturnType<typeof serializerFactory>
type Serialize = ReturnType<SerializerFactory>

/** Serializers by response schema object and its external schemas: the same constant gives the same function. */
const serializers = new WeakMap<object, Map<string, Serialize>>()

function buildSerializer (externalSchemas: unknown, options: unknown): SerializerFactory {
  const compile = serializerFactory(externalSchemas as never, options as never)
  const key = JSON.stringify([externalSchemas, options])
  return ((route: { schema: object }) => {
    let byKey = serializers.get(route.schema)
    if (byKey === undefined) serializers.set(route.schema, byKey = new Map())
    let serialize = byKey.get(key)
    if (serialize === undefined) byKey.set(key, serialize = compile(route as never))
    return serialize
  }) as SerializerFactory
}

/** Pass as fastify's `schemaController`. */
export const sharedSchemaCompilers = { compilersFactory: { buildSerializer } } as const
