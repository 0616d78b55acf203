/**
 * `import { connect } from 'pixelport/worker'` — the worker-thread client.
 */
import { workerData, type MessagePort } from 'node:worker_threads'
import { pxpError } from '../../protocol/errors.js'
import { LAYOUT_VERSION } from '../../protocol/layout.js'
import { WORKER_PROTOCOL_VERSION, type Welcome, type WorkerNotice, type WorkerRequest } from '../../protocol/worker-messages.js'
import { Rpc } from '../core/rpc.js'
import { PortTransport } from './port-transport.js'
import { WorkerStore } from './worker-store.js'

export { WorkerStore, type CreateOptions, type ViewRect, type WorkerStoreEvents } from './worker-store.js'
export { SharedImage } from '../core/shared-image.js'
export type { Frame, Loan, WaitOptions, WriteOptions } from '../core/image-host.js'
// The vocabulary a program using this entry point needs (the rest is in pixelport/protocol; the
// shared-memory layout and lock steps are internal).
export {
  PixelportError, isPixelportError, halfToNumber, typedArrayFor,
  type ErrorCode, type ImageDescriptor, type ChangeType, type CreateRequest, type Layout, type TypedArray
} from '../../protocol/index.js'

/** Key in `workerData` where `server.spawnWorker()` puts the channel. */
export const WORKER_DATA_KEY = 'pixelport'

/**
 * Connect to the server's store over `port` (from `server.workerChannel()`); with no argument, the port
 * that `server.spawnWorker()` put in `workerData.pixelport`.
 */
export async function connect (port?: MessagePort): Promise<WorkerStore> {
  const channel = port ?? (workerData as Record<string, unknown> | null)?.[WORKER_DATA_KEY] as MessagePort | undefined
  if (channel === undefined || channel === null || typeof (channel as MessagePort).postMessage !== 'function') {
    throw pxpError('PXP_ERR_VALIDATION', 'connect() needs the MessagePort from server.workerChannel(), or a worker started by server.spawnWorker()')
  }
  const rpc = new Rpc<WorkerRequest, WorkerNotice>(new PortTransport(channel))
  const welcome = await rpc.request<Welcome>({ op: 'hello', protocol: WORKER_PROTOCOL_VERSION, layoutVersion: LAYOUT_VERSION })
  return new WorkerStore(rpc, welcome)
}
