// A cluster node killed with SIGKILL and started again with the same --node-id and --recover re-registers
// the catalog it adopted: the other nodes list and serve its images again (real Redis, real CLI child).
import t from 'tap'
import type { ClusterDescriptor } from '../../server/cluster/node.js'
import { serveCli } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'
import { SIZE_FLAGS, stopCli } from '../helpers/restart.js'
import { startServer } from '../helpers/server.js'
import { shmAddon, shmFiles, testPrefix } from '../helpers/shm.js'
import { until } from '../helpers/until.js'

const loaded = shmAddon(t)

async function clusterImages (url: string): Promise<ClusterDescriptor[]> {
  const res = await fetch(`${url}/images?scope=cluster`)
  return (await res.json() as { images: ClusterDescriptor[] }).images
}

if (loaded !== null) {
  t.test('kill -9, restart with the same --node-id and --recover: the adopted catalog is back in the cluster', async (t) => {
    const redis = await startRedis(t)
    const prefix = testPrefix(t)
    const b = await startServer(t, { cluster: { redis: redis.url, nodeId: 'node-b', heartbeatMs: 100, ttlMs: 1000 } })
    const flags = ['--shm', '--shm-prefix', prefix, '--cluster', redis.url, '--node-id', 'node-a', ...SIZE_FLAGS]
    const first = await serveCli(t, flags)
    const bytes = new Uint8Array(8 * 6 * 3).map((_, i) => i * 7)
    for (const id of ['a/one', 'a/two']) {
      const res = await fetch(`${first.url}/images?id=${encodeURIComponent(id)}&width=8&height=6&mode=RGB`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
      t.equal(res.status, 201)
    }
    await until(async () => (await clusterImages(b.url)).filter((d) => d.node === 'node-a').length === 2 || undefined, { what: 'B lists node-a\'s images' })

    first.child.kill('SIGKILL')
    await until(async () => (await clusterImages(b.url)).some((d) => d.node === 'node-a') ? undefined : true, { what: 'node-a\'s images leave the catalog', timeout: 20_000 })

    const second = await serveCli(t, [...flags, '--recover'])
    t.match(second.output(), /recover: adopted store \w+: 2 images/)
    t.match(second.output(), 'cluster: node node-a joined')
    const listed = await until(async () => {
      const mine = (await clusterImages(b.url)).filter((d) => d.node === 'node-a')
      return mine.length === 2 ? mine : undefined
    }, { what: 'B lists the adopted images again', timeout: 20_000 })
    t.same(listed.map((d) => d.id).sort(), ['a/one', 'a/two'])
    // B learns where node-a now is from the directory (its mirror follows the announcements).
    const viaB = await until(async () => {
      const res = await fetch(`${b.url}/images/a%2Fone/data`)
      return res.status === 200 ? res : undefined
    }, { what: 'B serves the adopted image from node-a', timeout: 20_000 })
    t.same(new Uint8Array(await viaB.arrayBuffer()), bytes, 'with its bytes')
    t.equal(await stopCli(second.child), 0)
    t.same(shmFiles(prefix), [])
  })
}
