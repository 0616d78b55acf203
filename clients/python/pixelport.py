"""Pixelport for Python on the same host: numpy arrays over the server's own shared memory.

The server must run with ``--shm``. Its images then live in POSIX shared-memory segments
(``/dev/shm/<name>``) and their control words in a shared image table; this module maps both with
``np.memmap`` (mode ``'r+'`` or ``'r'``, never ``'w+'``, which would truncate live memory) and follows the
protocol in docs/shared-memory.md. numpy and the standard library only.

With a registration (the server gives back what you hold if this process dies, even by kill -9)::

    import pixelport
    store = pixelport.connect('http://127.0.0.1:8080')
    img = store.open('cam1')                       # a lease: the memory stays this image's until close()
    frame, generation = img.read()                 # a consistent copy (seqlock checked before and after)
    live = img.array                               # zero-copy, read-only, changes as writers commit
    with img.write() as a:                         # the write lock, taken for us by the server
        a[...] = 255                               # committed (new generation, waiters woken) on exit
    generation = img.wait_for_change(generation, timeout=1.0)   # a futex wait: no polling
    img.close(); store.close()

With a descriptor alone (no registration, read-only; the memory may be reused once the image is deleted)::

    d = pixelport.describe('http://127.0.0.1:8080', 'cam1')
    a = pixelport.array(d)                         # read-only numpy array over the live pixels
    frame, generation = pixelport.read(d)          # consistent copy
    generation = pixelport.wait_for_change(d, generation, timeout=1.0)

Atomic operations: numpy has none, so this module uses the kernel's. Waiting is a futex wait on the
GENERATION word (``syscall(SYS_futex, ...)`` through ctypes), registered in the slot's FUTEX_WAITERS with
FUTEX_WAKE_OP's atomic add, so every writer in every process wakes it. A consistent read confirms the
sequence word with a zero-timeout FUTEX_WAIT before and after the copy (an atomic compare with full memory
barriers). Leases, write locks and frame loans need compare-and-swap, which the kernel does not offer for
plain words: the server takes them on this process's behalf over the attach socket and records them, and
this process touches only pixels.
"""

import contextlib
import ctypes
import errno as _errno
import json
import os
import platform
import socket as _socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

__all__ = [
    'PixelportError', 'connect', 'describe', 'array', 'read', 'wait_for_change', 'Store', 'Image',
    'LAYOUT_VERSION',
]

# ---- the layout (protocol/layout.ts; docs/shared-memory.md) -----------------------------------------

LAYOUT_VERSION = 2
ATTACH_PROTOCOL_VERSION = 1
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

# ---- errors ---------------------------------------------------------------------------------------


class PixelportError(Exception):
    """An error with a stable ``code`` (``PXP_ERR_*``), as the server and every client report it."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# ---- the futex, through ctypes --------------------------------------------------------------------

_SYS_FUTEX = {'x86_64': 202, 'amd64': 202, 'aarch64': 98, 'arm64': 98, 'riscv64': 98, 'armv7l': 240,
              'armv6l': 240, 'i386': 240, 'i686': 240, 'ppc64le': 221, 's390x': 238}
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_FUTEX_WAKE_OP = 5
_FUTEX_OP_ADD = 1
_FUTEX_OP_CMP_EQ = 0
_INT_MAX = 0x7fffffff


class _Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sys_futex():
    number = _SYS_FUTEX.get(platform.machine())
    if number is None:
        raise PixelportError('PXP_ERR_SHM', 'no futex syscall number known for %s' % platform.machine())
    return number


def _futex(addr, op, val, timeout=None, addr2=0, val3=0):
    """One futex call; returns (result, errno)."""
    if isinstance(timeout, _Timespec):
        timeout = ctypes.byref(timeout)
    elif timeout is not None:
        timeout = ctypes.c_void_p(timeout)      # FUTEX_WAKE_OP: the second wake count goes here
    result = _libc.syscall(ctypes.c_long(_sys_futex()), ctypes.c_void_p(addr), ctypes.c_int(op),
                           ctypes.c_int(val), timeout, ctypes.c_void_p(addr2), ctypes.c_int(val3))
    return result, (ctypes.get_errno() if result < 0 else 0)


def _int32(value):
    value &= 0xffffffff
    return value - 0x100000000 if value >= 0x80000000 else value


def futex_wait(addr, expected, timeout=None):
    """Sleep while the int32 at ``addr`` equals ``expected``: 'ok', 'not-equal' or 'timed-out'.

    ``timeout`` in seconds (None: no limit). Like any futex it may return 'ok' without a change.
    """
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        ts = None
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            ts = _Timespec(int(left), int((left - int(left)) * 1e9))
        result, err = _futex(addr, _FUTEX_WAIT, _int32(expected), ts)
        if result == 0:
            return 'ok'
        if err == _errno.EAGAIN:
            return 'not-equal'
        if err == _errno.ETIMEDOUT:
            return 'timed-out'
        if err != _errno.EINTR:
            raise OSError(err, os.strerror(err))


def futex_wake(addr, count=_INT_MAX):
    """Wake up to ``count`` futex waiters on ``addr`` (any process); returns how many woke."""
    result, err = _futex(addr, _FUTEX_WAKE, count)
    if result < 0:
        raise OSError(err, os.strerror(err))
    return result


def atomic_add(addr, delta):
    """Atomically add ``delta`` (-2048..2047) to the int32 at ``addr``: FUTEX_WAKE_OP with no one to wake.

    The kernel's atomic read-modify-write comes with full memory barriers on every architecture.
    """
    if not -2048 <= delta <= 2047:
        raise ValueError('delta out of range')
    op = (_FUTEX_OP_ADD << 28) | (_FUTEX_OP_CMP_EQ << 24) | ((delta & 0xfff) << 12)
    result, err = _futex(addr, _FUTEX_WAKE_OP, 0, 0, addr, op)
    if result < 0:
        raise OSError(err, os.strerror(err))


def equals(addr, expected):
    """Atomically compare the int32 at ``addr`` with ``expected`` (with full barriers): a zero-timeout FUTEX_WAIT."""
    return futex_wait(addr, expected, 0) != 'not-equal'


# ---- mapping segments -----------------------------------------------------------------------------

_maps = {}
_maps_lock = threading.Lock()


def _segment_path(name):
    if not isinstance(name, str) or not name.startswith('/') or '/' in name[1:] or name in ('/', '/.', '/..'):
        raise PixelportError('PXP_ERR_SHM', 'not a shared-memory segment name: %r' % (name,))
    return os.path.join(SHM_DIR, name[1:])


def _map(name, dtype=np.uint8, writable=True):
    """np.memmap of a whole segment, cached per (name, dtype); 'r+' where allowed, else 'r'. Never 'w+'."""
    key = (name, np.dtype(dtype).str)
    with _maps_lock:
        found = _maps.get(key)
        if found is not None and (found.flags.writeable or not writable):
            return found
        path = _segment_path(name)
        if found is None:
            # A new segment is rare: drop mappings whose names are gone (released blocks, stopped servers),
            # so their memory is given back once no array uses it.
            for stale in [k for k in _maps if not os.path.exists(_segment_path(k[0]))]:
                del _maps[stale]
                _tables.pop(stale[0], None)
        try:
            mapped = np.memmap(path, dtype=dtype, mode='r+')
        except PermissionError:
            if writable and found is None:
                # A group member of a 0o640 store may only read.
                mapped = np.memmap(path, dtype=dtype, mode='r')
            elif found is not None:
                return found
            else:
                raise
        except FileNotFoundError:
            raise PixelportError('PXP_ERR_SHM', 'segment %s is gone (the server stopped or the image was deleted)' % name)
        _maps[key] = mapped
        return mapped


class _Table:
    """The image table of a store, mapped: int32 words plus their addresses for the futex."""

    def __init__(self, name):
        self.name = name
        self.words = _map(name, np.int32)
        if int(self.words[HEADER['LAYOUT_VERSION']]) != LAYOUT_VERSION or int(self.words[HEADER['SLOT_WORDS']]) != SLOT_WORDS:
            raise PixelportError('PXP_ERR_PROTOCOL', 'table %s has layout %d, this module speaks %d'
                                 % (name, int(self.words[HEADER['LAYOUT_VERSION']]), LAYOUT_VERSION))
        if int(self.words[HEADER['FLAGS']]) & TABLE_FLAG_SHARED == 0:
            raise PixelportError('PXP_ERR_SHM', '%s is not a shared image table' % name)
        self.address = self.words.ctypes.data
        self.writable = bool(self.words.flags.writeable)

    def word(self, index):
        return int(self.words[index])

    def addr(self, index):
        return self.address + 4 * index

    def key(self):
        at = HEADER['ATTACH_KEY']
        return [self.word(at) & 0xffffffff, self.word(at + 1) & 0xffffffff]


def _table(name):
    with _maps_lock:
        cached = _tables.get(name)
    if cached is None:
        cached = _Table(name)
        with _maps_lock:
            _tables[name] = cached
    return cached


_tables = {}


def _base(slot):
    return HEADER_WORDS + slot * SLOT_WORDS


# ---- HTTP -----------------------------------------------------------------------------------------

def _get_json(url, timeout=10.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            return json.load(res)
    except urllib.error.HTTPError as err:
        try:
            body = json.load(err)
            raise PixelportError(body.get('code', 'PXP_ERR_INTERNAL'), body.get('message', str(err)))
        except ValueError:
            raise PixelportError('PXP_ERR_INTERNAL', 'GET %s: HTTP %d' % (url, err.code))


def describe(url, image_id):
    """The descriptor of ``image_id`` from the server at ``url`` (``GET /images/<id>``)."""
    return _get_json(urllib.parse.urljoin(url, '/images/' + urllib.parse.quote(image_id, safe='')))


def shm_info(url):
    """``GET /shm``: whether the server is in shared memory, and the table and socket names."""
    return _get_json(urllib.parse.urljoin(url, '/shm'))


# ---- one image: geometry from its descriptor --------------------------------------------------------

class _Geometry:
    """Where the pixels of a descriptor are: segments, offsets, strides, frames, control slot."""

    def __init__(self, d):
        loc = d.get('location') or {}
        if loc.get('table') is None:
            raise PixelportError('PXP_ERR_SHM', 'image %s is not in shared memory (the server runs without --shm)' % d.get('id'))
        self.id = d['id']
        self.dtype = np.dtype(d['typestr'])
        self.shape = tuple(d['shape'])
        self.byte_length = d['byteLength']
        self.readonly = bool(d['readonly'])
        self.table = _table(loc['table'])
        self.slot = loc['slot']
        self.control = loc['controlSlot']
        self.kind = loc['kind']
        self.epoch = self.table.word(_base(self.slot) + SLOT['EPOCH'])
        # The image itself refuses writes (descriptor 'readonly' also covers line-based images, whose
        # contiguous bytes are a copy, yet they can be written row by row).
        self.image_readonly = self.table.word(_base(self.slot) + SLOT['FLAGS']) & SLOT_FLAG_READONLY != 0
        if self.kind == 'block':
            strides = d['__array_interface__'].get('strides')
            self.strides = tuple(strides) if strides is not None else None
            self.segment = loc['segment']
            self.frames = loc['frames']
            self.frame_stride = loc['frameStride']
            self.frame0 = loc['byteOffset'] - loc['frame'] * loc['frameStride']
        else:
            self.row_bytes = loc['rowBytes']
            self.rows = [(s['segment'], s['byteOffset'], s['rows']) for s in loc['segments']]
            self.frames = 1

    def frame_array(self, frame, writable=False):
        """The pixels of frame buffer ``frame`` as an ndarray over the live memory (block layout)."""
        if self.kind != 'block':
            raise PixelportError('PXP_ERR_VALIDATION', 'line-based image %s has no contiguous array: use read()' % self.id)
        memory = _map(self.segment, np.uint8, writable)
        a = np.ndarray(self.shape, self.dtype, buffer=memory, offset=self.frame0 + frame * self.frame_stride,
                       strides=self.strides)
        if not writable:
            a.flags.writeable = False
        elif not a.flags.writeable:
            raise PixelportError('PXP_ERR_FORBIDDEN', 'segment %s is mapped read-only here (file mode)' % self.segment)
        return a

    def gather_rows(self, out):
        """Copy the rows of a line-based image into ``out`` (C order)."""
        flat = out.reshape(-1).view(np.uint8)
        at = 0
        for name, offset, rows in self.rows:
            n = rows * self.row_bytes
            flat[at:at + n] = _map(name, np.uint8, False)[offset:offset + n]
            at += n

    def scatter_rows(self, source):
        flat = np.ascontiguousarray(source).reshape(-1).view(np.uint8)
        at = 0
        for name, offset, rows in self.rows:
            n = rows * self.row_bytes
            _map(name, np.uint8, True)[offset:offset + n] = flat[at:at + n]
            at += n

    def generation(self):
        return self.table.word(_base(self.control) + SLOT['GENERATION']) & 0xffffffff

    def is_live(self):
        base = _base(self.slot)
        return self.table.word(base + SLOT['STATE']) == STATE_LIVE and self.table.word(base + SLOT['EPOCH']) == self.epoch

    def copy(self, out=None, timeout=5.0):
        """A consistent copy of one committed generation: (array, generation). Seqlock, retried."""
        if out is None:
            out = np.empty(self.shape, self.dtype)
        elif out.shape != self.shape or out.dtype != self.dtype:
            raise PixelportError('PXP_ERR_BYTE_COUNT', 'out must be %s %s' % (self.shape, self.dtype))
        table = self.table
        base = _base(self.control)
        seq = base + SLOT['SEQ']
        deadline = time.monotonic() + timeout
        while True:
            s1 = table.word(seq)
            # Odd: a write is in progress (it is one memory copy long). The compare is also the barrier that
            # keeps the pixel loads after the first look at SEQ.
            if s1 & 1 == 0 and equals(table.addr(seq), s1):
                generation = table.word(base + SLOT['GENERATION']) & 0xffffffff
                if self.kind == 'block':
                    np.copyto(out, self.frame_array(table.word(base + SLOT['FRONT'])))
                else:
                    self.gather_rows(out)
                if equals(table.addr(seq), s1):
                    return out, generation
            if not self.is_live():
                raise PixelportError('PXP_ERR_NOT_FOUND', 'Image "%s" not found' % self.id)
            if time.monotonic() > deadline:
                raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s: a consistent read of %s' % (timeout, self.id))
            time.sleep(0)

    def wait(self, generation, timeout=None):
        """Block until GENERATION differs from ``generation``; returns the new one."""
        table = self.table
        base = _base(self.control)
        at = table.addr(base + SLOT['GENERATION'])
        waiters = table.addr(base + SLOT['FUTEX_WAITERS'])
        deadline = None if timeout is None else time.monotonic() + timeout
        registered = table.writable
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
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s waiting for a generation after %d of %s'
                                         % (timeout, generation, self.id))
                # Unregistered (a read-only table mapping) nobody wakes us: look again every millisecond.
                slice_s = left if registered else (0.001 if left is None else min(left, 0.001))
                futex_wait(at, generation, slice_s)
        finally:
            if registered:
                atomic_add(waiters, -1)


# ---- descriptor only --------------------------------------------------------------------------------

def array(descriptor):
    """A read-only numpy array over the live pixels of ``descriptor`` (block layout).

    No lease is taken: if the image is deleted its memory may later hold another image. For frame-buffered
    images this is the frame that was published when called. Use read() for a consistent copy.
    """
    g = _Geometry(descriptor)
    return g.frame_array(g.table.word(_base(g.control) + SLOT['FRONT']) if g.frames > 1 else 0)


def read(descriptor, out=None, timeout=5.0):
    """A consistent copy of ``descriptor``'s image: ``(array, generation)``."""
    return _Geometry(descriptor).copy(out, timeout)


def wait_for_change(descriptor, generation, timeout=None):
    """Block until the image's generation differs from ``generation`` (futex wait); returns the new one."""
    return _Geometry(descriptor).wait(generation, timeout)


# ---- with a registration: the attach socket ----------------------------------------------------------

class Store:
    """A registration with the server over its attach socket. Not thread-safe per call: one request at a time."""

    def __init__(self, url=None, table=None, socket_name=None, timeout=10.0):
        if table is None or socket_name is None:
            info = shm_info(url)
            if not info.get('enabled'):
                raise PixelportError('PXP_ERR_SHM', 'the server does not use shared memory (%s)' % info.get('reason'))
            table, socket_name = info['table'], info['socket']
        self._table = _table(table)
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(socket_name)
        except OSError as err:
            self._sock.close()
            raise PixelportError('PXP_ERR_SHM', 'cannot reach the attach socket: %s' % err)
        self._buffer = b''
        self._next = 1
        self._lock = threading.Lock()
        self.closed = False
        welcome = self._request('hello', protocol=ATTACH_PROTOCOL_VERSION, layoutVersion=LAYOUT_VERSION,
                                pid=os.getpid(), key=self._table.key(), claims=False)
        self.token = welcome['token']
        self.lock_timeout = welcome['lockTimeoutMs'] / 1000.0
        self.server_pid = welcome['pid']

    def _request(self, op, **fields):
        with self._lock:
            if self.closed:
                raise PixelportError('PXP_ERR_CLOSED', 'The connection to the server is closed')
            req = self._next
            self._next += 1
            message = dict(fields, op=op, req=req)
            self._sock.sendall((json.dumps(message) + '\n').encode())
            while True:
                reply = self._line()
                if reply.get('op') == 'reply' and reply.get('req') == req:
                    break
            if 'error' in reply:
                raise PixelportError(reply['error']['code'], reply['error']['message'])
            return reply['result']

    def _line(self):
        while b'\n' not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                self.closed = True
                raise PixelportError('PXP_ERR_CLOSED', 'The connection to the server is closed')
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b'\n', 1)
        return json.loads(line)

    def open(self, image_id):
        """Take a lease on ``image_id`` and return it as an Image (close() it when done)."""
        opened = self._request('open', id=image_id)
        return Image(self, opened['slot'], opened['descriptor'])

    def describe(self, image_id):
        return self._request('describe', id=image_id)

    def list(self):
        return self._request('list')

    def create(self, **spec):
        """Create an image: ``create(id='x', width=640, height=480, mode='RGB')`` or ``shape=..., typestr=...``."""
        return self._request('create', request=spec)

    def delete(self, image_id):
        self._request('delete', id=image_id)

    def close(self):
        """Detach: the server gives back every lease, lock and loan this store still holds."""
        if not self.closed:
            self.closed = True
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(url):
    """Attach to the server at ``url`` (``http://host:port``) for leases, writes and waits."""
    return Store(url)


class Image:
    """An image with a lease: its memory stays this image's until close(), even if it is deleted meanwhile."""

    def __init__(self, store, slot, descriptor):
        self._store = store
        self._slot = slot
        self._geometry = _Geometry(descriptor)
        self.descriptor = descriptor
        self.id = descriptor['id']
        self.shape = self._geometry.shape
        self.dtype = self._geometry.dtype
        self.readonly = self._geometry.image_readonly
        self.frames = self._geometry.frames
        self.closed = False

    @property
    def generation(self):
        return self._geometry.generation()

    @property
    def array(self):
        """Zero-copy and read-only: the live pixels (for frame buffers, the frame published now)."""
        self._check()
        g = self._geometry
        return g.frame_array(g.table.word(_base(g.control) + SLOT['FRONT']) if g.frames > 1 else 0)

    def read(self, out=None, timeout=5.0):
        """A consistent copy: ``(array, generation)``."""
        self._check()
        return self._geometry.copy(out, timeout)

    def wait_for_change(self, generation, timeout=None):
        """Block until the generation differs from ``generation`` (a futex wait); returns the new one."""
        self._check()
        return self._geometry.wait(generation, timeout)

    @contextlib.contextmanager
    def write(self, timeout=None):
        """Exclusive write access: ``with img.write() as a: a[...] = x``. Commits a new generation on exit.

        Plain images: ``a`` is the shared memory itself, under the write lock (readers retry meanwhile).
        Frame-buffered images: ``a`` is a loaned frame buffer holding the current pixels, published on exit
        (readers are never disturbed); an exception cancels it. Line-based images: a copy written back.
        The committed generation is then in ``self.last_generation``.
        """
        self._check()
        if self.readonly:
            raise PixelportError('PXP_ERR_READONLY', 'Image "%s" is read-only' % self.id)
        g = self._geometry
        timeout_ms = int(1000 * (self._store.lock_timeout if timeout is None else timeout))
        if g.frames > 1:
            frame = self._store._request('loan', slot=self._slot, timeoutMs=timeout_ms)['frame']
            try:
                target = g.frame_array(frame, writable=True)
                # Start from the published pixels, so a partial update keeps the rest.
                g.copy(target)
                yield target
            except BaseException:
                self._store._request('cancel', slot=self._slot, frame=frame)
                raise
            self.last_generation = self._store._request('publish', slot=self._slot, frame=frame, timeoutMs=timeout_ms)['generation']
            return
        self._store._request('begin', slot=self._slot, timeoutMs=timeout_ms)
        try:
            if g.kind == 'block':
                yield g.frame_array(0, writable=True)
            else:
                staging = np.empty(g.shape, g.dtype)
                g.gather_rows(staging)
                yield staging
                g.scatter_rows(staging)
        finally:
            # Like every writer: what was written is committed, even if the block raised half way.
            self.last_generation = self._store._request('commit', slot=self._slot)['generation']

    def close(self):
        """Give the lease back."""
        if not self.closed:
            self.closed = True
            if not self._store.closed:
                self._store._request('close', slot=self._slot)

    def _check(self):
        if self.closed:
            raise PixelportError('PXP_ERR_NOT_LEASED', 'Handle for "%s" was released' % self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
