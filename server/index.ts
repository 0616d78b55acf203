/** The server API: `import { createServer } from 'pixelport'`. */
export { createServer, type PixelportServer } from './server.js'
export type { WorkerErrorEvent } from './workers/bridge.js'
export type { ServerOptions, ShmOptions } from './options.js'
export { ImageStore, PendingImage, type StoreOptions, type StoreStats, type ImageCopy, type ViewRequest } from './store/image-store.js'
export { SnapshotCache, type Snapshot } from './store/snapshots.js'
export { ServerMetrics, type TransportMetrics } from './metrics/metrics.js'
export { HeapBlockProvider, type BlockProvider, type BlockMemory } from './memory/block-provider.js'
// The vocabulary a program using this entry point needs (the rest is in pixelport/protocol; the
// shared-memory layout and lock steps are internal).
export {
  PixelportError, isPixelportError, halfToNumber, typedArrayFor,
  type ErrorCode, type ImageDescriptor, type ChangeType, type CreateRequest, type Layout, type TypedArray
} from '../protocol/index.js'
