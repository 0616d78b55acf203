// producer.js — a worker thread
import { connect } from 'pixelport/worker'
const store = await connect()                       // or connect(port) with a port from workerChannel()
const image = await store.open('cam1')              // a lease; image.data is a Uint8Array over shared memory

/** Your drawing: here a red ramp that moves one pixel a frame. */
function render (rgba, t) {
  for (let i = 0; i < rgba.length; i += 4) rgba[i] = (i / 4 + t) & 0xff
}

for (let t = 0; ; t++) {
  const loan = await image.loan()                   // a frame buffer no reader holds
  render(loan.data, t)                              // take your time: readers are not blocked
  await loan.publish()                              // swapped in atomically as the next generation
}
