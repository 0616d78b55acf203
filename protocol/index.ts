/** Everything shared by the server and every client: no imports from server/ or client/. */
export * from './errors.js'
export * from './dtypes.js'
export * from './modes.js'
export * from './ids.js'
export * from './spec.js'
export * from './descriptor.js'
export * from './layout.js'
export * from './sync.js'
