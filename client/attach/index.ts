/**
 * `import { attach } from 'pixelport/attach'` — another Node.js process on the same host, mapping the
 * server's shared memory (the server runs with `--shm`). The images it opens are the SharedImage objects
 * worker threads get: read/write/waitForChange/loan/acquire/release work the same, zero-copy.
 *
 *   const store = await attach('http://127.0.0.1:8080')   // the store: open(id), list(), create(), …
 *   const image = await attach(descriptor)                 // one image, from a descriptor alone
 *
 * Leases, pins, loans and write locks this process takes are given back by the server if it dies, even
 * by kill -9: the attach socket is its registration, and the kernel closes it either way.
 */
import type { ShmInfo } from '../../protocol/attach-messages.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { findSlot } from '../../protocol/slot-reader.js'
import { loadShmAddon } from '../../shm/addon.js'
import type { SharedImage } from '../core/shared-image.js'
import { HttpClient, jsonOf } from '../remote/http.js'
import { AttachedStore, type AttachedStoreOptions, mapTable, register } from './attached-store.js'

export { AttachedStore, type AttachedStoreEvents } from './attached-store.js'
export { SharedImage } from '../core/shared-image.js'
export type { Frame, Loan, WaitOptions, WriteOptions } from '../core/image-host.js'
export type { CreateOptions, ViewRect } from '../core/store-base.js'
// The vocabulary a program using this entry point needs (the rest is in pixelport/protocol; the
// shared-memory layout and lock steps are internal).
export {
  PixelportError, isPixelportError, halfToNumber, typedArrayFor,
  type ErrorCode, type ImageDescriptor, type ChangeType, type CreateRequest, type Layout, type TypedArray
} from '../../protocol/index.js'

/**
 * Attach to the server at `url` (its base URL; only the origin is used) and return its store, or attach to
 * the one image a descriptor describes and return it (the connection closes when the image is released).
 * Throws PXP_ERR_SHM when the server is not in shared memory or the segments cannot be mapped here.
 */
/**
 * `reconnect` (default true): when the server restarts and adopts the store (`serve --recover`), the store
 * attaches again by itself; its handles stay valid and their leases are taken again. False: the first end of
 * the connection closes the store (its handles are released).
 */
export interface AttachOptions {
  reconnect?: boolean
}

export async function attach (target: string | URL, options?: AttachOptions): Promise<AttachedStore>
export async function attach (target: ImageDescriptor, options?: AttachOptions): Promise<SharedImage>
export async function attach (target: string | URL | ImageDescriptor, options: AttachOptions = {}): Promise<AttachedStore | SharedImage> {
  if (typeof target === 'string' || target instanceof URL) {
    const info = await shmInfo(target)
    if (!info.enabled || info.table === null || info.socket === null) {
      throw pxpError('PXP_ERR_SHM', `the server at ${new URL(target).origin} does not use shared memory (${info.reason ?? 'unknown reason'})`)
    }
    return await connectStore(info.table, info.socket, { reconnect: options.reconnect })
  }
  if (typeof target !== 'object' || target === null || typeof target.location !== 'object') {
    throw pxpError('PXP_ERR_VALIDATION', 'attach() takes a server URL or an image descriptor')
  }
  const { table, socket } = target.location
  if (typeof table !== 'string' || typeof socket !== 'string') {
    throw pxpError('PXP_ERR_SHM', `image ${target.id} is not in shared memory (the server runs without --shm)`)
  }
  const store = await connectStore(table, socket, { closeWhenUnused: true, reconnect: options.reconnect })
  try {
    const ref = findSlot(store.words, target.id)
    if (ref === null) throw pxpError('PXP_ERR_NOT_FOUND', target.id)
    return await store.openRef(ref, target.id)
  } catch (err) {
    store.close()
    throw err
  }
}

/** `GET /shm` of the server at `url`, through the project's one HTTP client (its errors, its parser). */
export async function shmInfo (url: string | URL): Promise<ShmInfo> {
  const http = new HttpClient(url, { shared: true })
  try {
    return jsonOf<ShmInfo>(await http.request('GET', '/shm'))
  } finally {
    await http.close()
  }
}

async function connectStore (tableName: string, socket: string, options: AttachedStoreOptions): Promise<AttachedStore> {
  const loaded = loadShmAddon()
  if (loaded.addon === null) throw pxpError('PXP_ERR_SHM', loaded.reason)
  // The table first: its key is what lets us register, and its layout must be one we speak.
  const address = { tableName, socket, words: mapTable(loaded.addon, tableName) }
  const { connection, welcome } = await register(address)
  return new AttachedStore(connection, welcome, address, loaded.addon, loaded.path, options)
}
