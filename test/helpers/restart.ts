/**
 * The restart tests' moving parts: a populated --shm server in a child process, the CLI started again with
 * --recover, and reading every image back over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { call, download } from './http.js'
import { fingerprintOf, type Fingerprint } from './restart-images.js'
import { childArgs, plainEnv } from './shm.js'

/** The sizes the child uses; a --recover start passes the same (capacity and blocks must fit the adopted store). */
export const SIZE_FLAGS = ['--capacity', String(64 << 20), '--block-size', String(1 << 20), '--max-images', '256']

export interface PopulatedChild {
  child: ChildProcess
  url: string
  storeId: string
  fingerprints: Fingerprint[]
  special: Record<string, Uint8Array>
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

/** Start test/fixtures/restart-server-child and wait for its first line. */
export async function startPopulated (t: Test, prefix: string, keep: boolean, special: string[] = []): Promise<PopulatedChild> {
  const child = spawn(process.execPath, [...childArgs('test/fixtures/restart-server-child'), prefix, keep ? 'keep' : 'nokeep', special.join(',')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
  })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    void exited.then(([code, signal]) => reject(new Error(`populated server exited (${code ?? signal}):\n${stderr}`)))
  })
  const first = JSON.parse(line)
  const special2: Record<string, Uint8Array> = {}
  for (const [id, b64] of Object.entries(first.special as Record<string, string>)) special2[id] = new Uint8Array(Buffer.from(b64, 'base64'))
  return { child, url: first.url, storeId: first.storeId, fingerprints: first.fingerprints, special: special2, exited }
}

/** Every image of the server at `url`, fingerprinted from HTTP reads (each one consistent generation). */
export async function httpFingerprints (url: string): Promise<{ prints: Fingerprint[], bytes: Map<string, Uint8Array> }> {
  const listed = await call<ImageDescriptor[] | { images: ImageDescriptor[] }>(url, 'GET', '/images')
  const list = Array.isArray(listed.body) ? listed.body : listed.body.images
  const prints: Fingerprint[] = []
  const bytes = new Map<string, Uint8Array>()
  for (const d of list) {
    const res = await download(url, d.id)
    if (res.status !== 200) throw new Error(`GET ${d.id}: ${res.status}`)
    const generation = Number(res.headers.get('x-pixelport-generation') ?? res.headers.get('x-generation') ?? d.generation)
    prints.push(fingerprintOf(d, generation, res.bytes))
    bytes.set(d.id, res.bytes)
  }
  return { prints: prints.sort((a, b) => (a.id < b.id ? -1 : 1)), bytes }
}

/** SIGTERM a CLI child and wait for it to exit. */
export async function stopCli (child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  return code
}
