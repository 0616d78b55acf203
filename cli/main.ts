#!/usr/bin/env node
/**
 * The `pixelport` executable: the program (./program.ts) on this process's streams and environment.
 */
import { processIo } from './io.js'
import { pixelport, report } from './program.js'

const io = processIo()
pixelport(process.argv.slice(2), io).then((code) => {
  process.exitCode = code
}, (err: Error) => {
  // Exit now: serve may have left handles open (a listening socket, a worker) when it failed to start.
  process.exit(report(err, io))
})
