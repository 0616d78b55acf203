"""The attach socket: a registration with the server for leases, write locks and frame loans.

One JSON object per line each way (docs/shared-memory.md, "Attach socket"). The connection *is* the
registration: when this process dies, the kernel closes it and the server gives back what it held. Python has
no compare-and-swap on shared words, so the server takes locks and loans on this process's behalf.
"""

from __future__ import annotations

import json
import os
import select
import socket as _socket
import threading
from typing import Any, Dict

from .errors import PixelportError, closed
from .shm import LAYOUT_VERSION, table

ATTACH_PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 << 20   # a list of every descriptor of a full store fits; more is a broken server


class AttachConnection:
    """One registration. Requests are serialised by a lock: one request in flight at a time."""

    def __init__(self, table_name: str, socket_path: str, timeout: float = 30.0) -> None:
        self.table = table(table_name)
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(socket_path)
        except OSError as err:
            self._sock.close()
            raise PixelportError('PXP_ERR_SHM', 'cannot reach the attach socket %s: %s' % (socket_path, err))
        self._buffer = b''
        self._next = 1
        self._lock = threading.Lock()
        self.closed = False
        welcome = self.request('hello', protocol=ATTACH_PROTOCOL_VERSION, layoutVersion=LAYOUT_VERSION,
                               pid=os.getpid(), key=self.table.key(), claims=False)
        self.token: int = welcome['token']
        self.lock_timeout: float = welcome['lockTimeoutMs'] / 1000.0
        self.server_pid: int = welcome['pid']

    def request(self, op: str, **fields: Any) -> Any:
        with self._lock:
            if self.closed:
                raise closed()
            req = self._next
            self._next += 1
            message = dict(fields, op=op, req=req)
            try:
                self._sock.sendall((json.dumps(message) + '\n').encode())
                while True:
                    reply = self._line()
                    if reply.get('op') == 'reply' and reply.get('req') == req:
                        break
            except PixelportError:
                raise
            except _socket.timeout:
                self._shut()
                raise PixelportError('PXP_ERR_TIMEOUT', 'no answer to %s on the attach socket' % op)
            except OSError as err:
                # BrokenPipeError, ConnectionResetError, …: the server is gone.
                self._shut()
                raise closed(err.__class__.__name__)
            if 'error' in reply:
                raise PixelportError(reply['error']['code'], reply['error']['message'])
            return reply['result']

    def _line(self) -> Dict[str, Any]:
        while b'\n' not in self._buffer:
            chunk = self._sock.recv(1 << 20)
            if not chunk:
                self._shut()
                raise closed('the server closed the attach socket')
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                self._shut()
                raise PixelportError('PXP_ERR_PROTOCOL', 'an attach line over %d bytes' % MAX_LINE_BYTES)
        line, self._buffer = self._buffer.split(b'\n', 1)
        return json.loads(line)

    def check_alive(self) -> None:
        """Raise PXP_ERR_CLOSED if the server has closed the socket (a peek, never blocks)."""
        if self.closed:
            raise closed()
        if not self._lock.acquire(blocking=False):
            return                                  # a request in flight will notice itself
        try:
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
                # Readable with nothing to read: the server closed its end (or the socket failed).
                if readable and self._sock.recv(1, _socket.MSG_PEEK) == b'':
                    self._shut()
                    raise closed('the server closed the attach socket')
            except (OSError, ValueError) as err:
                self._shut()
                raise closed(err.__class__.__name__)
        finally:
            self._lock.release()

    def _shut(self) -> None:
        self.closed = True
        try:
            self._sock.close()
        except OSError:  # pragma: no cover
            pass

    def close(self) -> None:
        """Detach: the server gives back every lease, lock and loan this registration still holds."""
        if not self.closed:
            self._shut()
