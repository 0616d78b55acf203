// consumer.js — another worker thread
import { connect } from 'pixelport/worker'
const store = await connect()
const image = await store.open('cam1')
let gen = image.generation
for (let frame = 0; frame < 10; frame++) {
  gen = await image.waitForChange(gen, { timeout: 1000 })   // Atomics.waitAsync: no polling, no message
  const sum = await image.read((data) => data.reduce((a, b) => a + b, 0))   // one consistent generation
  console.log(`generation ${gen}: sum ${sum}`)
}
image.release()
store.close()
