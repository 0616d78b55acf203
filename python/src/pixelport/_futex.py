"""The kernel's atomics, through ctypes: futex wait/wake, an atomic add, an atomic compare.

numpy has no atomic operations. ``FUTEX_WAKE_OP`` with nobody to wake is an atomic add, a zero-timeout
``FUTEX_WAIT`` an atomic compare; the kernel performs both with full memory barriers. Futexes are shared
(never FUTEX_PRIVATE_FLAG), so a waiter here meets a waker in any other process.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import time
from typing import Optional

from .errors import PixelportError

_SYS_FUTEX = {'x86_64': 202, 'amd64': 202, 'aarch64': 98, 'arm64': 98, 'riscv64': 98, 'armv7l': 240,
              'armv6l': 240, 'i386': 240, 'i686': 240, 'ppc64le': 221, 's390x': 238}
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_FUTEX_WAKE_OP = 5
_FUTEX_OP_ADD = 1
_FUTEX_OP_CMP_EQ = 0
INT_MAX = 0x7fffffff


class _Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sys_futex() -> int:
    number = _SYS_FUTEX.get(platform.machine())
    if number is None:
        raise PixelportError('PXP_ERR_SHM', 'no futex syscall number known for %s' % platform.machine())
    return number


def _futex(addr: int, op: int, val: int, timeout: object = None, addr2: int = 0, val3: int = 0) -> 'tuple[int, int]':
    """One futex call; returns (result, errno)."""
    if isinstance(timeout, _Timespec):
        timeout = ctypes.byref(timeout)
    elif timeout is not None:
        timeout = ctypes.c_void_p(timeout)  # type: ignore[arg-type]  # FUTEX_WAKE_OP: the second wake count
    result = _libc.syscall(ctypes.c_long(_sys_futex()), ctypes.c_void_p(addr), ctypes.c_int(op),
                           ctypes.c_int(val), timeout, ctypes.c_void_p(addr2), ctypes.c_int(val3))
    return result, (ctypes.get_errno() if result < 0 else 0)


def int32(value: int) -> int:
    value &= 0xffffffff
    return value - 0x100000000 if value >= 0x80000000 else value


def futex_wait(addr: int, expected: int, timeout: Optional[float] = None) -> str:
    """Sleep while the int32 at ``addr`` equals ``expected``: 'ok', 'not-equal' or 'timed-out'.

    ``timeout`` in seconds (None: no limit). Like any futex it may return 'ok' without a change.
    """
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        ts = None
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            ts = _Timespec(int(left), int((left - int(left)) * 1e9))
        result, err = _futex(addr, _FUTEX_WAIT, int32(expected), ts)
        if result == 0:
            return 'ok'
        if err == _errno.EAGAIN:
            return 'not-equal'
        if err == _errno.ETIMEDOUT:
            return 'timed-out'
        if err != _errno.EINTR:
            raise PixelportError('PXP_ERR_SHM', 'futex wait: %s' % os.strerror(err))


def futex_wake(addr: int, count: int = INT_MAX) -> int:
    """Wake up to ``count`` futex waiters on ``addr`` (any process); returns how many woke."""
    result, err = _futex(addr, _FUTEX_WAKE, count)
    if result < 0:
        raise PixelportError('PXP_ERR_SHM', 'futex wake: %s' % os.strerror(err))
    return result


def atomic_add(addr: int, delta: int) -> None:
    """Atomically add ``delta`` (-2048..2047) to the int32 at ``addr``: FUTEX_WAKE_OP with no one to wake."""
    if not -2048 <= delta <= 2047:
        raise ValueError('delta out of range')
    op = (_FUTEX_OP_ADD << 28) | (_FUTEX_OP_CMP_EQ << 24) | ((delta & 0xfff) << 12)
    result, err = _futex(addr, _FUTEX_WAKE_OP, 0, 0, addr, op)
    if result < 0:
        raise PixelportError('PXP_ERR_SHM', 'futex wake-op: %s' % os.strerror(err))


def equals(addr: int, expected: int) -> bool:
    """Atomically compare the int32 at ``addr`` with ``expected`` (full barriers): a zero-timeout FUTEX_WAIT."""
    return futex_wait(addr, expected, 0) != 'not-equal'
