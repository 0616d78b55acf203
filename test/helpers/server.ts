/**
 * Start a real Pixelport server on a free loopback port for one test, and close it after.
 */
import type { Test } from 'tap'
import { createServer, type PixelportServer } from '../../server/server.js'
import type { ServerOptions } from '../../server/options.js'

export interface Started {
  server: PixelportServer
  /** Base URL, e.g. http://127.0.0.1:43121 */
  url: string
}

export async function startServer (t: Test, options: ServerOptions = {}): Promise<Started> {
  const server = await createServer({
    port: 0,
    host: '127.0.0.1',
    blockSize: 4 * 1024 * 1024,
    capacity: 64 * 1024 * 1024,
    // Load shedding has its own test; on a loaded test machine it would only add noise elsewhere.
    maxEventLoopDelayMs: 0,
    ...options,
  })
  const url = await server.listen()
  t.teardown(() => server.close())
  return { server, url }
}
