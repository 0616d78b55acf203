/**
 * The /dev/shm layer both sides stand on: the native addon's typed bindings and the naming of segments.
 * The server (server/memory) creates and adopts segments with it; attached clients (client/attach) map
 * them. It imports nothing of ours but protocol/.
 */
export * from './addon.js'
export * from './names.js'
