// main.js — the main thread: node main.js
import { createServer } from 'pixelport'
const server = await createServer({ port: Number(process.env.PORT ?? 8080) })
await server.listen()
server.on('workerError', ({ module, error }) => console.error(`${module} failed: ${error.message}`))
// One frame-buffered image, created before either thread needs it (a worker can also store.create it).
server.store.create({ id: 'cam1', width: 640, height: 480, mode: 'RGBA', frames: 3 })
server.spawnWorker(new URL('./producer.js', import.meta.url))          // already connected
const consumer = server.spawnWorker(new URL('./consumer.js', import.meta.url))
consumer.once('exit', () => server.close())                            // the consumer stops after 10 frames
// or by hand: new Worker(file, { workerData: { port: server.workerChannel() }, transferList: [port] })
