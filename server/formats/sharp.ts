/**
 * sharp (libvips), loaded on first use. Most servers decode or encode a picture only now and then, and many
 * processes import the server without ever doing so (the CLI's client commands, worker-only embedders, each
 * test file): they skip its ~50 ms load.
 */
import type SharpModule from 'sharp'

let loading: Promise<typeof SharpModule> | null = null

export async function loadSharp (): Promise<typeof SharpModule> {
  return await (loading ??= import('sharp').then((m) => m.default))
}
