"""The server's shared memory, mapped: segments, the image table, one image's geometry (docs/shared-memory.md).

Segments are mapped with ``np.memmap`` in mode ``'r+'`` or ``'r'``, never ``'w+'``, which would truncate live
memory and kill every process touching it with SIGBUS.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ._futex import atomic_add, equals, futex_wait
from .descriptor import Descriptor
from .errors import PixelportError

# ---- the layout (protocol/layout.ts) -----------------------------------------------------------------

LAYOUT_VERSION = 3
HEADER_WORDS = 16
SLOT_WORDS = 80
HEADER = dict(LAYOUT_VERSION=0, SLOT_WORDS=1, SLOT_CAPACITY=2, HIGH_WATER=3, CATALOG_SEQ=4, COMMIT_SEQ=5,
              EXTERNAL_COMMITS=6, FLAGS=7, ATTACH_KEY=8)
SLOT = dict(STATE=0, EPOCH=1, SEQ=2, GENERATION=3, WRITE_LOCK=4, LEASES=5, FLAGS=6, FRAMES=14, FRONT=15,
            FUTEX_WAITERS=68)
STATE_LIVE = 1
SLOT_FLAG_READONLY = 1
TABLE_FLAG_SHARED = 1
SHM_DIR = '/dev/shm'

# ---- mapping segments ---------------------------------------------------------------------------------

_maps: Dict[Tuple[str, str], np.memmap] = {}
_tables: Dict[str, '_Table'] = {}
_maps_lock = threading.Lock()


def segment_path(name: str) -> str:
    if not isinstance(name, str) or not name.startswith('/') or '/' in name[1:] or name in ('/', '/.', '/..'):
        raise PixelportError('PXP_ERR_SHM', 'not a shared-memory segment name: %r' % (name,))
    return os.path.join(SHM_DIR, name[1:])


def map_segment(name: str, dtype: 'np.dtype | type' = np.uint8, writable: bool = True) -> np.memmap:
    """np.memmap of a whole segment, cached per (name, dtype); 'r+' where allowed, else 'r'. Never 'w+'."""
    key = (name, np.dtype(dtype).str)
    with _maps_lock:
        found = _maps.get(key)
        if found is not None and (found.flags.writeable or not writable):
            return found
        path = segment_path(name)
        if found is None:
            # A new segment is rare: drop mappings whose names are gone (released blocks, stopped servers),
            # so their memory is given back once no array uses it.
            for stale in [k for k in _maps if not os.path.exists(segment_path(k[0]))]:
                del _maps[stale]
                _tables.pop(stale[0], None)
        try:
            mapped = np.memmap(path, dtype=dtype, mode='r+')
        except PermissionError:
            if writable and found is None:
                try:
                    mapped = np.memmap(path, dtype=dtype, mode='r')   # a group member of a 0o640 store
                except PermissionError:
                    raise PixelportError('PXP_ERR_SHM', 'segment %s is not readable by this user' % name)
            elif found is not None:
                return found
            else:
                raise PixelportError('PXP_ERR_SHM', 'segment %s is not readable by this user' % name)
        except FileNotFoundError:
            raise PixelportError('PXP_ERR_SHM', 'segment %s is gone (the server stopped, the image was deleted, '
                                 'or the server is on another host)' % name)
        _maps[key] = mapped
        return mapped


class _Table:
    """The image table of a store, mapped: int32 words plus their addresses for the futex."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.words = map_segment(name, np.int32)
        if int(self.words[HEADER['LAYOUT_VERSION']]) != LAYOUT_VERSION or int(self.words[HEADER['SLOT_WORDS']]) != SLOT_WORDS:
            raise PixelportError('PXP_ERR_PROTOCOL', 'table %s has layout %d, this module speaks %d'
                                 % (name, int(self.words[HEADER['LAYOUT_VERSION']]), LAYOUT_VERSION))
        if int(self.words[HEADER['FLAGS']]) & TABLE_FLAG_SHARED == 0:
            raise PixelportError('PXP_ERR_SHM', '%s is not a shared image table' % name)
        self.address: int = self.words.ctypes.data
        self.writable = bool(self.words.flags.writeable)

    def word(self, index: int) -> int:
        return int(self.words[index])

    def addr(self, index: int) -> int:
        return self.address + 4 * index

    def key(self) -> List[int]:
        at = HEADER['ATTACH_KEY']
        return [self.word(at) & 0xffffffff, self.word(at + 1) & 0xffffffff]


def table(name: str) -> _Table:
    with _maps_lock:
        cached = _tables.get(name)
    if cached is None:
        cached = _Table(name)
        with _maps_lock:
            _tables[name] = cached
    return cached


def slot_base(slot: int) -> int:
    return HEADER_WORDS + slot * SLOT_WORDS


class Geometry:
    """Where the pixels of a descriptor are: segments, offsets, strides, frames, control slot."""

    def __init__(self, d: Descriptor) -> None:
        loc = d.get('location') or {}
        if loc.get('table') is None:
            raise PixelportError('PXP_ERR_SHM', 'image %s is not in shared memory (the server runs without --shm)' % d.get('id'))
        self.id: str = d['id']
        self.dtype = np.dtype(d['typestr'])
        self.shape: Tuple[int, ...] = tuple(d['shape'])
        self.table = table(loc['table'])
        self.slot: int = loc['slot']
        self.control: int = loc['controlSlot']
        self.kind: str = loc['kind']
        self.epoch = self.table.word(slot_base(self.slot) + SLOT['EPOCH'])
        # The image itself refuses writes (descriptor 'readonly' also covers line-based images, whose
        # contiguous bytes are a copy, yet they can be written row by row).
        self.image_readonly = self.table.word(slot_base(self.slot) + SLOT['FLAGS']) & SLOT_FLAG_READONLY != 0
        self.frames = 1
        if self.kind == 'block':
            strides = d['__array_interface__'].get('strides')
            self.strides = tuple(strides) if strides is not None else None
            self.segment: str = loc['segment']
            self.frames = loc['frames']
            self.frame0: int = loc['byteOffset'] - loc['frame'] * loc['frameStride']
            self.frame_stride: int = loc['frameStride']
        else:
            self.row_bytes: int = loc['rowBytes']
            self.rows = [(s['segment'], s['byteOffset'], s['rows']) for s in loc['segments']]

    def front(self) -> int:
        return self.table.word(slot_base(self.control) + SLOT['FRONT']) if self.frames > 1 else 0

    def frame_array(self, frame: int, writable: bool = False) -> np.ndarray:
        """The pixels of frame buffer ``frame`` as an ndarray over the live memory (block layout)."""
        if self.kind != 'block':
            raise PixelportError('PXP_ERR_VALIDATION', 'line-based image %s has no contiguous array: use read()' % self.id)
        memory = map_segment(self.segment, np.uint8, writable)
        a = np.ndarray(self.shape, self.dtype, buffer=memory, offset=self.frame0 + frame * self.frame_stride,
                       strides=self.strides)
        if not writable:
            a.flags.writeable = False
        elif not a.flags.writeable:
            raise PixelportError('PXP_ERR_FORBIDDEN', 'segment %s is mapped read-only here (file mode)' % self.segment)
        return a

    def gather_rows(self, out: np.ndarray) -> None:
        """Copy the rows of a line-based image into ``out`` (C order)."""
        flat = out.reshape(-1).view(np.uint8)
        at = 0
        for name, offset, rows in self.rows:
            n = rows * self.row_bytes
            flat[at:at + n] = map_segment(name, np.uint8, False)[offset:offset + n]
            at += n

    def scatter_rows(self, source: np.ndarray) -> None:
        flat = np.ascontiguousarray(source).reshape(-1).view(np.uint8)
        at = 0
        for name, offset, rows in self.rows:
            n = rows * self.row_bytes
            map_segment(name, np.uint8, True)[offset:offset + n] = flat[at:at + n]
            at += n

    def generation(self) -> int:
        return self.table.word(slot_base(self.control) + SLOT['GENERATION']) & 0xffffffff

    def is_live(self) -> bool:
        base = slot_base(self.slot)
        return self.table.word(base + SLOT['STATE']) == STATE_LIVE and self.table.word(base + SLOT['EPOCH']) == self.epoch

    def copy(self, out: Optional[np.ndarray] = None, timeout: float = 5.0) -> Tuple[np.ndarray, int]:
        """A consistent copy of one committed generation: (array, generation). Seqlock, retried."""
        if out is None:
            out = np.empty(self.shape, self.dtype)
        elif tuple(out.shape) != self.shape or out.dtype != self.dtype:
            raise PixelportError('PXP_ERR_BYTE_COUNT', 'out must be %s %s' % (self.shape, self.dtype))
        t = self.table
        base = slot_base(self.control)
        seq = base + SLOT['SEQ']
        deadline = time.monotonic() + timeout
        while True:
            s1 = t.word(seq)
            # Odd: a write is in progress (it is one memory copy long). The compare is also the barrier that
            # keeps the pixel loads after the first look at SEQ.
            if s1 & 1 == 0 and equals(t.addr(seq), s1):
                generation = t.word(base + SLOT['GENERATION']) & 0xffffffff
                if self.kind == 'block':
                    np.copyto(out, self.frame_array(t.word(base + SLOT['FRONT']) if self.frames > 1 else 0))
                else:
                    self.gather_rows(out)
                if equals(t.addr(seq), s1):
                    return out, generation
            if not self.is_live():
                raise PixelportError('PXP_ERR_NOT_FOUND', 'Image "%s" not found' % self.id)
            if time.monotonic() > deadline:
                raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s: a consistent read of %s' % (timeout, self.id))
            time.sleep(0)

    def wait(self, generation: int, timeout: Optional[float] = None,
             alive: Optional[Callable[[], None]] = None) -> int:
        """Block until GENERATION differs from ``generation``; returns the new one.

        ``alive`` is called between futex slices (at most every 200 ms) and raises if the server is gone.
        """
        t = self.table
        base = slot_base(self.control)
        at = t.addr(base + SLOT['GENERATION'])
        waiters = t.addr(base + SLOT['FUTEX_WAITERS'])
        deadline = None if timeout is None else time.monotonic() + timeout
        registered = t.writable
        # Registered before comparing: a writer then either sees us (and wakes us) or we see its commit.
        if registered:
            atomic_add(waiters, 1)
        try:
            while True:
                current = self.generation()
                if current != generation & 0xffffffff:
                    return current
                if not self.is_live():
                    raise PixelportError('PXP_ERR_NOT_FOUND', 'Image "%s" not found' % self.id)
                if alive is not None:
                    alive()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s waiting for a generation after %d of %s'
                                         % (timeout, generation, self.id))
                # Unregistered (a read-only table mapping) nobody wakes us: look again every millisecond.
                cap = 0.2 if registered else 0.001
                futex_wait(at, generation, cap if left is None else min(left, cap))
        finally:
            if registered:
                atomic_add(waiters, -1)


# ---- descriptor only (no registration, read-only) -------------------------------------------------------

def array(descriptor: Descriptor) -> np.ndarray:
    """A read-only numpy array over the live pixels of ``descriptor`` (block layout).

    No lease is taken: if the image is deleted its memory may later hold another image. For frame-buffered
    images this is the frame that was published when called. Use read() for a consistent copy.
    """
    g = Geometry(descriptor)
    return g.frame_array(g.front())


def read(descriptor: Descriptor, out: Optional[np.ndarray] = None, timeout: float = 5.0) -> Tuple[np.ndarray, int]:
    """A consistent copy of ``descriptor``'s image: ``(array, generation)``."""
    return Geometry(descriptor).copy(out, timeout)


def wait_for_change(descriptor: Descriptor, generation: int, timeout: Optional[float] = None) -> int:
    """Block until the image's generation differs from ``generation`` (futex wait); returns the new one."""
    return Geometry(descriptor).wait(generation, timeout)
