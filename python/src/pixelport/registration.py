"""This process's registration with a shared-memory store, kept across the server's restarts.

The pixels and the image table live in /dev/shm segments, outside the server. When the server dies and a new
one adopts the segments (``pixelport serve --recover``, or a restart with ``--keep``), everything this process
has mapped stays valid: only the attach socket is gone. So instead of failing for good, the registration
attaches again, on the same socket, the next time it is used, and opens every image it holds again, which
puts its leases back (the new server gave back everything the dead one's registrations held).

While the server is down, calls fail with ``PXP_ERR_CLOSED`` and can be retried (docs: "Restart and crash
recovery"). A futex wait keeps waiting meanwhile (the table it waits on is still mapped) and attaches again
as soon as it can; it fails with ``PXP_ERR_CLOSED`` only when the store itself is gone (its table segment was
removed: the server stopped without ``--keep``, or a new store replaced it).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Optional

from .attach import AttachConnection
from .errors import CLOSED, PixelportError, closed

if TYPE_CHECKING:
    from .image import SharedImage

SHM_DIR = '/dev/shm'
# How often a waiting futex tries to attach again while the server is down (its slices are 200 ms anyway).
REATTACH_INTERVAL = 0.2


class Registration:
    """One registration that outlives server restarts. ``reconnect=False`` gives the old fail-for-good one."""

    def __init__(self, table_name: str, socket_path: str, timeout: float, reconnect: bool = True) -> None:
        self._table_name = table_name
        self._socket_path = socket_path
        self._timeout = timeout
        self._reconnect = reconnect
        self._connection = AttachConnection(table_name, socket_path, timeout)
        self.table = self._connection.table
        self._images: 'weakref.WeakSet[SharedImage]' = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        self._last_try = 0.0
        self.reconnects = 0
        """How many times this process attached again after its server went away."""

    # What the current connection's hello said.
    @property
    def token(self) -> int:
        return self._connection.token

    @property
    def lock_timeout(self) -> float:
        return self._connection.lock_timeout

    @property
    def server_pid(self) -> int:
        return self._connection.server_pid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connection(self) -> AttachConnection:
        """The live connection, attaching again first if the server restarted (PXP_ERR_CLOSED if it is down)."""
        with self._lock:
            if self._closed:
                raise closed('this store was closed')
            if not self._connection.closed:
                # A peek (no blocking): a server that died since the last call left the socket at EOF. Found
                # here, before a request is sent, the request can go to the restarted server instead.
                try:
                    self._connection.check_alive()
                except PixelportError as err:
                    if err.code != CLOSED:
                        raise
            if self._connection.closed:
                if not self._reconnect:
                    raise closed('the server went away (connected with reconnect=False)')
                self._reattach()
            return self._connection

    def request(self, op: str, **fields: Any) -> Any:
        return self.connection.request(op, **fields)

    # ---- the images whose leases this registration holds --------------------------------------------

    def opened(self, image: 'SharedImage') -> None:
        self._images.add(image)

    def release(self, image: 'SharedImage') -> None:
        """Give ``image``'s lease back, if the current server knows of it (a dead server's leases died with it)."""
        self._images.discard(image)
        if self._closed or self._connection.closed or image._registered_on is not self._connection:
            return
        self._connection.request('close', slot=image._slot)

    # ---- liveness, for futex waits ------------------------------------------------------------------

    def check_alive(self) -> None:
        """Between futex slices: raise PXP_ERR_CLOSED only if the store is gone, else try to attach again."""
        if self._closed:
            raise closed('this store was closed')
        try:
            self._connection.check_alive()
            return
        except PixelportError as err:
            if err.code != CLOSED or not self._reconnect:
                raise
        if not self._table_exists():
            raise closed('the store is gone: its table %s was removed' % self._table_name)
        now = time.monotonic()
        if now - self._last_try < REATTACH_INTERVAL:
            return
        self._last_try = now
        try:
            _ = self.connection           # attaches again if the server is back; the wait goes on either way
        except PixelportError as err:
            if err.code != CLOSED:
                raise

    def close(self) -> None:
        """Detach: the server gives back every lease, lock and loan this registration still holds."""
        with self._lock:
            self._closed = True
            self._connection.close()

    # ---- attaching again ----------------------------------------------------------------------------

    def _table_exists(self) -> bool:
        return os.path.exists(os.path.join(SHM_DIR, self._table_name.lstrip('/')))

    def _reattach(self) -> None:
        if not self._table_exists():
            raise closed('the store is gone: its table %s was removed (the server stopped without --keep, '
                         'or a new store replaced it); connect again' % self._table_name)
        try:
            connection = AttachConnection(self._table_name, self._socket_path, self._timeout)
        except PixelportError as err:
            # Nothing listening yet (PXP_ERR_SHM: cannot reach the socket): the server is still down.
            if err.code not in ('PXP_ERR_SHM', CLOSED):
                raise
            raise closed('the server is not back yet: %s' % err.message)
        for image in list(self._images):
            image._reregister(connection)
        self._connection = connection
        self.reconnects += 1
