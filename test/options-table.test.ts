/**
 * The options table (server/options-table.ts) is the one place an option's default lives: createServer and
 * the ImageStore must resolve exactly the table's defaults.
 */
import t from 'tap'
import { createServer } from '../server/server.js'
import { defaultCapacity, OPTION_TABLE, STORE_DEFAULTS } from '../server/options-table.js'
import { ImageStore } from '../server/store/image-store.js'

t.test('createServer defaults equal the table\'s', async (t) => {
  const server = await createServer({})
  t.teardown(() => server.close())
  const resolved = server.options as unknown as Record<string, unknown>
  let checked = 0
  for (const row of OPTION_TABLE) {
    if (row.option === undefined || row.default === undefined || row.option.includes('.')) continue
    const expected = typeof row.default === 'function' ? row.default({ maxImageBytes: resolved.maxImageBytes as number }) : row.default
    // Shared memory off resolves to null (on: the resolved { mode, prefix, recover }).
    const value = row.option === 'shm' ? resolved.shm !== null : resolved[row.option]
    t.same(value, expected, `${row.option} defaults to ${String(expected)}`)
    checked++
  }
  t.ok(checked >= 25, `${checked} defaults compared`)
  t.equal(server.options.capacity, defaultCapacity(), 'capacity: a quarter of RAM, at most 16 GiB')
  t.equal(server.options.stagingBudgetBytes, Math.max(256 * 1024 * 1024, server.options.maxImageBytes))
})

t.test('the shm defaults are the table\'s', async (t) => {
  const { resolveOptions } = await import('../server/options.js')
  const shm = resolveOptions({ shm: true }).shm!
  for (const key of ['mode', 'prefix', 'recover'] as const) {
    t.equal(shm[key], OPTION_TABLE.find((r) => r.option === `shm.${key}`)!.default, `shm.${key}`)
  }
})

t.test('an ImageStore made without a server uses the same defaults', async (t) => {
  const store = new ImageStore({ capacity: 1 << 20 })
  t.teardown(() => store.close())
  t.equal(store.stats().maxImages, STORE_DEFAULTS.maxImages)
  t.equal(store.limits.maxDimension, STORE_DEFAULTS.maxDimension)
  t.equal(store.lockTimeoutMs, STORE_DEFAULTS.lockTimeoutMs)
  t.equal(store.evictPolicy, STORE_DEFAULTS.evict)
  const big = new ImageStore({ capacity: 4 * 1024 * 1024 * 1024 })
  t.teardown(() => big.close())
  t.equal(big.limits.maxImageBytes, STORE_DEFAULTS.maxImageBytes, 'maxImageBytes, when capacity allows it')
})

t.test('bounds from the table name the option', async (t) => {
  const { resolveOptions } = await import('../server/options.js')
  t.throws(() => resolveOptions({ chunkSize: 10 }), { code: 'PXP_ERR_VALIDATION', message: /option chunkSize must be an integer >= 1024, got 10/ })
  t.throws(() => resolveOptions({ uploadDeadlineMs: 2 ** 31 }), { message: /option uploadDeadlineMs must be at most 2147483647 ms/ })
  t.equal(resolveOptions({ maxEventLoopDelayMs: 0 }).maxEventLoopDelayMs, 0, 'a row with min 0 takes 0')
})
