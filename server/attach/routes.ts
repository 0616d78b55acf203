/**
 * `GET /shm`: where a process on the same host finds the store's shared memory (table segment, attach
 * socket), or why there is none. Clients call it once; after that everything is in shared memory and on the
 * attach socket.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { ShmInfo } from '../../protocol/attach-messages.js'

const nullableString = { type: ['string', 'null'] } as const
const nullableInteger = { type: ['integer', 'null'] } as const

export const shmInfoSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['enabled', 'reason', 'layoutVersion', 'table', 'socket', 'storeId', 'prefix', 'mode', 'maxSlots', 'lockTimeoutMs', 'pid'],
  properties: {
    enabled: { type: 'boolean' },
    reason: nullableString,
    layoutVersion: { type: 'integer' },
    table: { ...nullableString, description: 'POSIX shared-memory name of the image table (file /dev/shm/<name>)' },
    socket: { ...nullableString, description: 'Path of the Unix socket to attach on (in /dev/shm, with the store file mode)' },
    storeId: nullableString,
    prefix: nullableString,
    mode: nullableInteger,
    maxSlots: { type: 'integer' },
    lockTimeoutMs: { type: 'integer' },
    pid: { type: 'integer' },
  },
} as const

export const shmRoutes: FastifyPluginAsync<{ info: () => ShmInfo }> = async (app, { info }) => {
  // Shared-memory status and the names a local process attaches with
  // Segment names let a local process map every image: an admin matter when tokens are in use.
  app.get('/shm', {
    config: { access: 'admin' },
    schema: {
      summary: 'Shared-memory status and the names a local process attaches with',
      description: 'Whether images live in /dev/shm (and why not, when they do not), the segment and socket names, ' +
        'the store id and the lock timeout: what `pixelport.attach()` and client/attach read. Admin scope when tokens are in use.',
      tags: ['shm'],
      response: { 200: shmInfoSchema },
    },
  }, async () => info())
}
