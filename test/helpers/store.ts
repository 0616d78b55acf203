/**
 * Helpers for store-level tests: a store closed on teardown, reproducible pixel bytes, and a snapshot of
 * everything observable about a store so a test can say "this failure left the store exactly as it was".
 */
import type { Test } from 'tap'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { ImageStore, type StoreOptions } from '../../server/store/image-store.js'

/** A fresh store for one test, closed when the test ends. */
export function newStore (t: Test, options: StoreOptions = {}): ImageStore {
  const store = new ImageStore({ blockSize: 64 * 1024, capacity: 1024 * 1024, ...options })
  t.teardown(() => store.close())
  return store
}

/** `length` bytes from a seeded xorshift generator: random-looking, identical on every run. */
export function seededBytes (length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

export interface StoreState {
  list: ImageDescriptor[]
  stats: ReturnType<ImageStore['stats']>
  slotsInUse: number
}

export function storeState (store: ImageStore): StoreState {
  return { list: store.list(), stats: store.stats(), slotsInUse: store.table.slotsInUse }
}

/** Collect every event the store emits, in order, as `kind:id` (`updated:id:generation`), until stop(). */
export function recordEvents (store: ImageStore): { events: string[], stop: () => void } {
  const events: string[] = []
  const created = (d: ImageDescriptor): void => { events.push(`created:${d.id}`) }
  const updated = (d: ImageDescriptor): void => { events.push(`updated:${d.id}:${d.generation}`) }
  const deleted = (d: ImageDescriptor): void => { events.push(`deleted:${d.id}`) }
  store.on('created', created)
  store.on('updated', updated)
  store.on('deleted', deleted)
  return {
    events,
    stop: () => {
      store.off('created', created)
      store.off('updated', updated)
      store.off('deleted', deleted)
    },
  }
}

/** Run `fn`, expect it to fail with `code`, and check the store and its events did not change. */
export async function expectUnchanged (t: Test, store: ImageStore, code: string, fn: () => unknown, what = code): Promise<void> {
  const before = storeState(store)
  const rec = recordEvents(store)
  try {
    await t.rejects(async () => { await fn() }, { code }, what)
  } finally {
    rec.stop()
  }
  t.same(storeState(store), before, `${what}: store unchanged`)
  t.same(rec.events, [], `${what}: no events`)
}
