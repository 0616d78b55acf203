/**
 * The shared-memory layout of the image table: one fixed-size record of Int32 control words per image.
 *
 * The table lives in a (growable) SharedArrayBuffer that the server and every worker thread map. A worker
 * can therefore open an image whose block it already mapped without any message: it finds the record,
 * takes a lease with `Atomics.add`, and builds a TypedArray over the block. Every word has a named slot
 * here; nothing else in the code base may use a bare offset. Bump LAYOUT_VERSION on any change.
 *
 * Consistency protocol (the recipe a reader in any thread follows):
 *   writer: CAS WRITE_LOCK 0 → token; SEQ += 1 (odd); write pixels; GENERATION += 1; SEQ += 1 (even);
 *           notify(GENERATION); WRITE_LOCK = 0; notify(WRITE_LOCK)
 *   reader: s1 = SEQ (retry while odd); read pixels; s2 = SEQ; accept only when s1 === s2
 * Views share the control words of their parent: a view's record points at it through PARENT.
 *
 * Images with FRAMES > 1 are written by loan/publish instead: a writer loans a frame buffer that is neither
 * published nor pinned (PINS[f]: 0 → -1), fills it without any lock, then publishes it under the write
 * lock (SEQ odd; FRONT = f; GENERATION += 1; SEQ even). A reader takes a consistent (FRONT, GENERATION) pair
 * under the seqlock and pins that buffer (PINS[f] += 1 by CAS while >= 0); a pinned buffer is never loaned,
 * so the reader's memory stays valid until it unpins, however many generations are published meanwhile.
 *
 * Other processes (the table in a /dev/shm segment, TABLE_FLAG.SHARED set): Atomics.notify only wakes
 * waiters in its own process, so a waiter in another process registers in FUTEX_WAITERS and waits with a
 * futex on GENERATION, and every writer that sees FUTEX_WAITERS > 0 after a commit also futex-wakes
 * GENERATION. A writer outside the server's process adds 1 to EXTERNAL_COMMITS and futex-wakes it after
 * each commit, which is how the server (and its worker threads) learn of it. docs/shared-memory.md has the
 * byte-by-byte layout for readers and writers in other languages.
 */

export const LAYOUT_VERSION = 3

/** Header words at the start of the table. */
export const HEADER_WORDS = 16
export const HEADER = {
  /** LAYOUT_VERSION of the writer of this table. */
  LAYOUT_VERSION: 0,
  /** Words per slot record (SLOT_WORDS). */
  SLOT_WORDS: 1,
  /** Maximum number of slots the table can grow to. */
  SLOT_CAPACITY: 2,
  /** One past the highest slot index ever used: lookups scan [0, HIGH_WATER). */
  HIGH_WATER: 3,
  /** Bumped on every create and delete; waiters on catalog changes wait on this word. */
  CATALOG_SEQ: 4,
  /**
   * Bumped (and notified) after every commit by any writer in any thread. The server waits on this one word
   * to learn of commits made through shared memory, so a writer never has to send a message.
   */
  COMMIT_SEQ: 5,
  /**
   * Bumped, then futex-woken, by writers outside the server's process after every commit. The server has
   * one thread in a futex wait on this word that relays such commits to its own waiters.
   */
  EXTERNAL_COMMITS: 6,
  /** TABLE_FLAG bits. */
  FLAGS: 7,
  /**
   * Two words of a random key (low word first). A process attaching over the attach socket proves with it
   * that it can map the table, i.e. that the segment's file mode lets it in.
   */
  ATTACH_KEY: 8,
} as const

export const TABLE_FLAG = {
  /** The table lives in a shared-memory segment that other processes map: cross-process wakes apply. */
  SHARED: 1,
  /**
   * The server may make an image that is not in the table local when asked (a cluster replica): a worker
   * that finds no slot for an id asks it before answering PXP_ERR_NOT_FOUND. Clear: not-found needs no message.
   */
  ASK_MISSING: 2,
} as const

export const SLOT_WORDS = 80
export const SLOT = {
  /** SLOT_STATE value. Written last when a slot is published, first when it is retired. */
  STATE: 0,
  /** Bumped every time the slot is reused; a cached (slot, epoch) pair that no longer matches is stale. */
  EPOCH: 1,
  /** Seqlock word: odd while a write is in progress. */
  SEQ: 2,
  /** Number of committed writes. `Atomics.wait` on this word to wait for the next generation. */
  GENERATION: 3,
  /** 0 when free, else the token of the holder (see LOCK_TOKEN). */
  WRITE_LOCK: 4,
  /** Open handles over this image across all threads; memory is reused only when it drops to 0. */
  LEASES: 5,
  /** SLOT_FLAG bits. */
  FLAGS: 6,
  /** DType code (dtypes.ts). */
  DTYPE: 7,
  /** Mode code (modes.ts), 0 for raw shape + typestr. */
  MODE: 8,
  NDIM: 9,
  /** Index of the block holding the pixels, -1 for line-based images. */
  BLOCK: 10,
  /** Byte offset of the first pixel in the block (uint32). */
  BYTE_OFFSET: 11,
  /** Bytes of the image in C order (uint32). */
  BYTE_LENGTH: 12,
  /** Slot of the parent image for views, -1 otherwise. */
  PARENT: 13,
  /** Number of frame buffers (1, or 2..MAX_FRAMES for loan/publish images). */
  FRAMES: 14,
  /** Index of the published frame buffer: readers read it, writers loan any other. */
  FRONT: 15,
  /** Dimensions 0-3 (uint32); dimensions 4-7 are at SHAPE_HIGH (see shapeWord). */
  SHAPE: 16,
  /** Byte strides of dimensions 0-3; 4-7 at STRIDES_HIGH (see strideWord). */
  STRIDES: 20,
  /** FNV-1a hash of the UTF-8 id. */
  ID_HASH: 24,
  ID_LENGTH: 25,
  /** MAX_ID_BYTES of UTF-8 id, packed little-endian into words. */
  ID_BYTES: 26,
  /** Bytes from one frame buffer to the next (uint32); frame f starts at BYTE_OFFSET + f * FRAME_STRIDE. */
  FRAME_STRIDE: 58,
  /**
   * One word per frame buffer: > 0 readers pinning it, 0 free, -1 loaned to a writer. Pins and loans are
   * taken by compare-and-swap, so a buffer is never read and written at once.
   */
  PINS: 60,
  /**
   * Futex waiters on GENERATION in other processes (they add 1 before waiting, subtract 1 after). A writer
   * that reads > 0 after a commit futex-wakes GENERATION as well as Atomics.notify-ing it.
   */
  FUTEX_WAITERS: 68,
  /** Dimensions 4-7 (layout 3: tensors of up to 8 dimensions; words 69-79 were unused in layout 2). */
  SHAPE_HIGH: 70,
  /** Byte strides of dimensions 4-7. */
  STRIDES_HIGH: 74,
} as const

/** Slot word (from the slot base) of dimension `i` of the shape. */
export function shapeWord (i: number): number {
  return i < 4 ? SLOT.SHAPE + i : SLOT.SHAPE_HIGH + i - 4
}

/** Slot word (from the slot base) of the byte stride of dimension `i`. */
export function strideWord (i: number): number {
  return i < 4 ? SLOT.STRIDES + i : SLOT.STRIDES_HIGH + i - 4
}

export const MAX_FRAMES = 8

/** Dimensions of an image: 8, as numpy-like tensors need (pictures are 2-D or 3-D). */
export const MAX_NDIM = 8
export const MAX_ID_BYTES = 128

export const SLOT_STATE = {
  FREE: 0,
  LIVE: 1,
  /** Deleted from the catalog; memory waits until LEASES reaches 0. */
  DELETED: 2,
} as const

export const SLOT_FLAG = {
  READONLY: 1,
  VIEW: 2,
  LINES: 4,
  /**
   * A read-only replica of an image owned by another cluster node: its descriptor (owner, stale) comes from
   * the server, not from the slot words alone.
   */
  REPLICA: 8,
} as const

/**
 * Write-lock tokens: the server uses SERVER, worker connection k (k >= 1) uses k, and processes attached over
 * the attach socket use EXTERNAL + k.
 */
export const LOCK_TOKEN = {
  FREE: 0,
  /** First token of attached processes: a holder from here up (below SERVER) lives in another process. */
  EXTERNAL: 0x40000000,
  SERVER: 0x7fffffff,
} as const

/** Is `token` held by another process (whose unlock cannot Atomics.notify this process)? */
export function isExternalToken (token: number): boolean {
  return token >= LOCK_TOKEN.EXTERNAL && token < LOCK_TOKEN.SERVER
}

export function slotBase (slot: number): number {
  return HEADER_WORDS + slot * SLOT_WORDS
}

export function tableBytes (slots: number): number {
  return (HEADER_WORDS + slots * SLOT_WORDS) * Int32Array.BYTES_PER_ELEMENT
}

/** 32-bit FNV-1a over bytes: cheap, and identical in every language that reads the table. */
export function fnv1a (bytes: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

/**
 * Per-connection claims: each worker connection gets its own Int32Array of CLAIM_WORDS per slot, where it
 * records the leases, pins and loans it holds. The worker writes it; the server reads it only after the
 * worker is gone, to give back exactly what that worker held (a crash never wedges an image).
 */
export const CLAIM_WORDS = 1 + MAX_FRAMES
export const CLAIM = {
  /** Leases this connection holds on the slot. */
  LEASES: 0,
  /** Per frame buffer of the slot: pins held (> 0) or -1 when this connection has it on loan. */
  PINS: 1,
} as const

export function claimBase (slot: number): number {
  return slot * CLAIM_WORDS
}

/** What a slot's words describe, as the store writes it and adoption reads it back. */
export interface SlotFields {
  id: string
  flags: number
  dtype: number
  mode: number
  shape: readonly number[]
  strides: readonly number[]
  block: number
  byteOffset: number
  byteLength: number
  parent: number
  frames: number
  frameStride: number
}
