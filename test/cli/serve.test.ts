import t from 'tap'
import { once } from 'node:events'
import { serveCli } from '../helpers/cli.js'
import { until } from '../helpers/until.js'

async function json (url: string): Promise<any> {
  const res = await fetch(url)
  return await res.json()
}

t.test('serve --demo: demo images, and a producer whose generations advance', async (t) => {
  const { url, child } = await serveCli(t, ['--demo'])
  const ids = (await json(url + '/images')).images.map((d: any) => d.id)
  t.ok(ids.includes('demo/gradient') && ids.includes('demo/gradient/center') && ids.includes('demo/checker-lines'), 'still demo images')
  const first = await until(async () => {
    const res = await fetch(url + '/images/demo%2Fpattern/data')
    if (res.status !== 200) return undefined
    return { generation: Number(res.headers.get('x-pixelport-generation')), bytes: new Uint8Array(await res.arrayBuffer()) }
  }, { what: 'the demo pattern' })
  t.equal(first.bytes.byteLength, 640 * 480 * 4)
  const second = await until(async () => {
    const res = await fetch(url + '/images/demo%2Fpattern/data')
    const generation = Number(res.headers.get('x-pixelport-generation'))
    const bytes = new Uint8Array(await res.arrayBuffer())
    return generation > first.generation ? { generation, bytes } : undefined
  }, { what: 'a newer generation' })
  t.ok(second.generation > first.generation, 'two downloads, two generations')
  t.not(Buffer.compare(Buffer.from(first.bytes), Buffer.from(second.bytes)), 0, 'and different pixels')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'SIGTERM shuts down cleanly')
})

t.test('serve --worker FILE --threads N runs user modules connected to the store', async (t) => {
  const { url } = await serveCli(t, ['--worker', 'test/fixtures/user-module.mjs', '--threads', '2'])
  const found = await until(async () => {
    const images = (await json(url + '/images')).images.filter((d: any) => d.id.startsWith('user/') && d.generation === 1)
    return images.length === 2 ? images : undefined
  }, { what: 'both workers to write' })
  t.same(found.map((d: any) => d.id).sort(), ['user/0-of-2', 'user/1-of-2'])
  const bytes = new Uint8Array(await (await fetch(url + '/images/user%2F1-of-2/data')).arrayBuffer())
  t.same(Array.from(bytes), new Array(16).fill(2), 'the worker wrote through shared memory')
})

t.test('bad flags fail with a clear message and exit code 2', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const { CLI } = await import('../helpers/cli.js')
  const r = spawnSync(process.execPath, [CLI, 'serve', '--capacity', 'lots'], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /--capacity: expected a size like 512M or 4G/)
  const help = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8' })
  t.equal(help.status, 0)
  t.match(help.stdout, /--worker FILE/)
})
