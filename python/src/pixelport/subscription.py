"""Subscriptions: events of a store, with each update's pixels, as an iterator and an async iterator.

Each subscription has its own WebSocket, so a reader that stops reading holds up only itself: the server
then applies the subscription's policy (``latest`` conflates, ``all`` queues up to ``queue`` events and then
ends the subscription with ``PXP_ERR_SUBSCRIPTION_OVERFLOW``).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional

import numpy as np

from . import ws as _ws
from .descriptor import Descriptor
from .errors import PixelportError

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store

POLICIES = ('latest', 'all')


@dataclass
class Event:
    """One event: ``type`` is 'created', 'updated' or 'deleted'.

    ``array`` holds the pixels of exactly ``generation`` (C order, writable) when the subscription has
    ``data=True`` (not for 'deleted', nor for remote images of a cluster). ``skipped``: generations of this
    image conflated away (policy 'latest') since the previous event about it.
    """

    type: str
    id: str
    generation: int
    descriptor: Descriptor
    skipped: int = 0
    array: Optional[np.ndarray] = None


class Subscription:
    def __init__(self, store: 'Store', ids: Optional[List[str]], policy: str, data: bool, queue: Optional[int]) -> None:
        if policy not in POLICIES:
            raise PixelportError('PXP_ERR_VALIDATION', 'policy must be one of %s, not %r' % (POLICIES, policy))
        self._store = store
        self._loop = store._loop_thread()
        self._conn: _ws.WsConnection = self._loop.run(_ws.WsConnection(_ws.ws_url(store.url), store.token).open(), store.timeout)
        self.closed = False
        try:
            self.sub = self._loop.run(self._conn.subscribe(ids, policy, data, queue), store.timeout)
        except BaseException:
            self.close()
            raise

    async def _next(self) -> Optional[Event]:
        item = await self._conn.next_event(self.sub)
        if item is None:
            return None
        m, frame, data = item
        array = None
        if frame is not None:
            array = np.frombuffer(data, np.dtype(frame['typestr'])).reshape([int(n) for n in frame['shape']])
        return Event(type=m['type'], id=m['id'], generation=int(m['generation']), descriptor=m['descriptor'],
                     skipped=int(m.get('skipped') or 0), array=array)

    def _ended(self) -> PixelportError:
        return self._conn.error or PixelportError('PXP_ERR_CLOSED', 'the subscription ended')

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None after ``timeout`` seconds. Raises when the subscription ends (``.code``)."""
        if self.closed:
            raise StopIteration
        future = self._loop.submit(self._next())
        try:
            event = future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None
        if event is None:
            if self.closed:
                raise StopIteration
            raise self._ended()
        return event

    def __iter__(self) -> 'Subscription':
        return self

    def __next__(self) -> Event:
        event = self.next()
        assert event is not None
        return event

    def __aiter__(self) -> 'Subscription':
        return self

    async def __anext__(self) -> Event:
        if self.closed:
            raise StopAsyncIteration
        event = await self._loop.run_async(self._next())
        if event is None:
            if self.closed:
                raise StopAsyncIteration
            raise self._ended()
        return event

    def close(self) -> None:
        """Stop: closes this subscription's WebSocket. Iteration then stops."""
        if self.closed:
            return
        self.closed = True
        try:
            self._loop.run(self._conn.aclose(), 10)
        except PixelportError:
            pass
        if self in self._store._subs:
            self._store._subs.remove(self)

    async def aclose(self) -> None:
        """``close()`` for asynchronous code: does not block the caller's event loop."""
        if self.closed:
            return
        self.closed = True
        try:
            await self._loop.run_async(self._conn.aclose())
        except PixelportError:
            pass
        if self in self._store._subs:
            self._store._subs.remove(self)

    def __enter__(self) -> 'Subscription':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> 'Subscription':
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


__all__ = ['Event', 'Subscription']
