/**
 * The remote client: `import { RemoteClient } from 'pixelport/client'`.
 *
 * Runs in Node.js (with `ws`, loaded on demand) and in browsers (with the platform WebSocket). Nothing
 * here imports a Node.js module at the top level.
 */
export { RemoteClient, type ConnectOptions, type GetOptions, type PutOptions } from './client.js'
export type { ReconnectOptions } from './reconnect.js'
export type { RemoteFrame } from './frames.js'
export { RemoteSubscription, type RemoteEvent, type SubscribeOptions } from './subscription.js'
export type { SocketOptions, WebSocketConstructor } from './socket.js'
export { socketUrlOf } from './url.js'
export { HttpClient, download, errorFromResponse, fetchDescriptor, fetchList, jsonOf, type Download, type DownloadOptions, type HttpClientOptions, type HttpOptions, type SendOptions } from './http.js'
export type { HttpBody, HttpResponse } from './transport.js'
export { PixelportError, isPixelportError, type ErrorCode } from '../../protocol/errors.js'
export { typedArrayFor, type ImageDescriptor } from '../../protocol/descriptor.js'
export type { TypedArray } from '../../protocol/dtypes.js'
export type { CreateRequest } from '../../protocol/spec.js'
export { PROTOCOL_VERSION, type EventType, type Policy, type Region, type ServerLimits } from '../../protocol/messages.js'
