"""A private asyncio event loop in a daemon thread: the synchronous API drives the WebSocket through it.

websockets 10 has only an asyncio API. Running it on our own loop lets synchronous callers block on a result
and asynchronous callers (on their own loop) await it, without either loop seeing the other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Awaitable, Optional, TypeVar

from .errors import PixelportError

T = TypeVar('T')


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name='pixelport-ws', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Awaitable[T]) -> 'concurrent.futures.Future[T]':
        if self.loop.is_closed():
            coro.close()  # type: ignore[attr-defined]
            raise PixelportError('PXP_ERR_CLOSED', 'The store is closed')
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T], timeout: Optional[float] = None) -> T:
        """Run ``coro`` on the loop and wait for it here (never call from the loop's own thread)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PixelportError('PXP_ERR_TIMEOUT', 'no answer within %s s' % timeout)

    async def run_async(self, coro: Awaitable[T]) -> T:
        """Await ``coro`` (run on our loop) from another event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
