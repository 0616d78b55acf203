"""The WebSocket transport (docs/protocol.md): msgpack messages over websockets' asyncio API.

Replies are matched to requests by ``req``; streams (a ``get``, a subscription's frames) are reassembled by
``stream``. Needs the ``ws`` extra: ``msgpack`` and ``websockets``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from .errors import PixelportError, closed

try:  # optional: only this transport needs them
    import msgpack
    import websockets
    import websockets.exceptions
except ImportError:  # pragma: no cover - exercised only without the extra
    msgpack = None
    websockets = None

PROTOCOL_VERSION = 1
# Before `welcome` tells us chunkSize, accept messages this large; after it, at least chunkSize + 48 (the
# largest message the server sends is one chunk: a 48-byte header and chunkSize payload bytes). websockets'
# own default (1 MiB) would close the connection with 1009 on the first full chunk.
DEFAULT_MAX_MESSAGE = 64 << 20

Frame = Tuple[Dict[str, Any], bytearray]


def available() -> bool:
    return msgpack is not None and websockets is not None


def ws_url(http_url: str) -> str:
    parts = urllib.parse.urlsplit(http_url)
    scheme = 'wss' if parts.scheme == 'https' else 'ws'
    return '%s://%s/ws' % (scheme, parts.netloc)


def _close_error(ws: Any, detail: str = '') -> PixelportError:
    reason = getattr(ws, 'close_reason', None) or ''
    if isinstance(reason, str) and reason.startswith('PXP_ERR_'):
        return PixelportError(reason, 'the server closed the connection (%s, %s)' % (getattr(ws, 'close_code', None), reason))
    return closed(detail or 'WebSocket closed with %s' % getattr(ws, 'close_code', None))


class WsConnection:
    """One WebSocket connection. All coroutines run on one event loop (the store's LoopThread)."""

    def __init__(self, url: str, token: Optional[str] = None, sub_queue: int = 1) -> None:
        if not available():
            raise PixelportError('PXP_ERR_VALIDATION', 'the WebSocket transport needs msgpack and websockets '
                                 '(pip install "pixelport[ws]")')
        self.url = url
        self.token = token
        self.limits: Dict[str, int] = {}
        self._ws: Any = None
        self._next = 1
        self._pending: Dict[Any, asyncio.Future] = {}
        self._streams: Dict[int, Dict[str, Any]] = {}
        self._events: Dict[int, asyncio.Queue] = {}
        self._waiting_frame: Dict[int, Dict[str, Any]] = {}
        self._data_subs: set = set()
        self._sub_queue = sub_queue
        self._reader: Optional[asyncio.Task] = None
        self.error: Optional[PixelportError] = None
        self.last_sub_error: Optional[PixelportError] = None

    async def open(self) -> 'WsConnection':
        headers = {'Authorization': 'Bearer ' + self.token} if self.token is not None else {}
        try:
            self._ws = await websockets.connect(self.url, extra_headers=headers, max_size=DEFAULT_MAX_MESSAGE,
                                                compression=None, open_timeout=30)
        except websockets.exceptions.InvalidStatusCode as err:
            code = {401: 'PXP_ERR_UNAUTHORIZED', 403: 'PXP_ERR_FORBIDDEN', 429: 'PXP_ERR_TOO_MANY_CONNECTIONS'}
            raise PixelportError(code.get(err.status_code, 'PXP_ERR_PROTOCOL'),
                                 'WebSocket upgrade refused with HTTP %d' % err.status_code)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as err:
            raise closed('%s: %s' % (self.url, err))
        self._reader = asyncio.ensure_future(self._read())
        hello: Dict[str, Any] = {'op': 'hello', 'protocol': PROTOCOL_VERSION, 'client': 'pixelport-python'}
        if self.token is not None:
            hello['token'] = self.token
        welcome = await self.call(hello)
        self.limits = welcome['limits']
        self._ws.max_size = max(DEFAULT_MAX_MESSAGE, self.limits['chunkSize'] + 48)
        return self

    # ---- plumbing -------------------------------------------------------------------------------------

    async def _send(self, message: Dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        try:
            await self._ws.send(msgpack.packb(message, use_bin_type=True))
        except websockets.exceptions.ConnectionClosed:
            raise _close_error(self._ws)
        except OSError as err:
            raise closed(err.__class__.__name__)

    def _new_req(self) -> Tuple[int, asyncio.Future]:
        req = self._next
        self._next += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        return req, future

    async def call(self, message: Dict[str, Any]) -> Dict[str, Any]:
        """Send a request and wait for its reply (or the frame + bytes of a ``get``)."""
        req, future = self._new_req()
        try:
            await self._send(dict(message, req=req))
        except PixelportError:
            self._pending.pop(req, None)
            raise
        return await future

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                if not isinstance(raw, bytes):
                    raise PixelportError('PXP_ERR_PROTOCOL', 'a text frame from the server')
                await self._dispatch(msgpack.unpackb(raw, raw=False))
            self.error = _close_error(self._ws)
        except websockets.exceptions.ConnectionClosed:
            self.error = _close_error(self._ws)
        except PixelportError as err:
            self.error = err
        except asyncio.CancelledError:
            self.error = closed('closed by this client')
            raise
        except Exception as err:  # a malformed message: we cannot follow this connection any more
            self.error = PixelportError('PXP_ERR_PROTOCOL', 'unreadable message from the server: %r' % err)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(self.error or closed())
            self._pending.clear()

    def _settle(self, req: Any, value: Any) -> None:
        future = self._pending.pop(req, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def _dispatch(self, m: Dict[str, Any]) -> None:
        op = m.get('op')
        if op == 'frame':
            self._streams[m['stream']] = {'frame': m, 'buf': bytearray(m['byteLength']), 'got': 0}
        elif op == 'chunk':
            s = self._streams.get(m['stream'])
            if s is None or m['offset'] != s['got'] or m['offset'] + len(m['data']) > len(s['buf']):
                raise PixelportError('PXP_ERR_PROTOCOL', 'a chunk out of order')
            s['buf'][m['offset']:m['offset'] + len(m['data'])] = m['data']
            s['got'] += len(m['data'])
        elif op == 'end':
            s = self._streams.pop(m['stream'])
            if s['got'] != s['frame']['byteLength']:
                raise PixelportError('PXP_ERR_PROTOCOL', 'a stream ended short')
            frame = s['frame']
            if frame.get('req') is not None:
                self._settle(frame['req'], (frame, s['buf']))
            else:
                event = self._waiting_frame.pop(frame['sub'], None)
                queue = self._events.get(frame['sub'])
                if event is not None and queue is not None:
                    await queue.put((event, frame, s['buf']))
        elif op == 'event':
            queue = self._events.get(m['sub'])
            if queue is None:
                return
            if m['sub'] in self._data_subs and m['type'] != 'deleted' and m.get('descriptor', {}).get('node') is None:
                self._waiting_frame[m['sub']] = m
            else:
                await queue.put((m, None, None))
        elif op == 'error':
            if m.get('stream') is not None:
                self._streams.pop(m['stream'], None)
            err = PixelportError(m.get('code', 'PXP_ERR_INTERNAL'), m.get('message', ''))
            if m.get('req') is not None:
                future = self._pending.pop(m['req'], None)
                if future is not None and not future.done():
                    future.set_exception(err)
            elif m.get('sub') is not None:
                # A `latest` subscription that missed one frame goes on; a fatal one is followed by the
                # close, whose reason carries the same code.
                self._waiting_frame.pop(m['sub'], None)
                self.last_sub_error = err
        elif op == 'subscribed':
            self._events[m['sub']] = asyncio.Queue(self._sub_queue)
            self._settle(m['req'], m)
        elif 'req' in m:
            self._settle(m['req'], m)

    # ---- operations ---------------------------------------------------------------------------------

    async def get(self, image_id: str, region: Optional[Tuple[int, int, int, int]] = None) -> Frame:
        message: Dict[str, Any] = {'op': 'get', 'id': image_id}
        if region is not None:
            x, y, w, h = region
            message['region'] = {'x': x, 'y': y, 'width': w, 'height': h}
        return await self.call(message)  # type: ignore[return-value]

    async def put(self, data: memoryview, fields: Dict[str, Any]) -> Dict[str, Any]:
        """Inline when it fits one message, else a header, chunks and ``end`` (protocol.md §7)."""
        chunk = max(1024, min(self.limits['chunkSize'], self.limits['maxMessageBytes'] - 4096))
        if len(data) <= chunk:
            return (await self.call(dict(fields, op='put', data=bytes(data))))['descriptor']
        req, future = self._new_req()
        await self._send(dict(fields, op='put', req=req, byteLength=len(data)))
        for offset in range(0, len(data), chunk):
            if future.done():        # refused early: stop sending (the reply says why)
                break
            await self._send({'op': 'chunk', 'req': req, 'offset': offset, 'data': bytes(data[offset:offset + chunk])})
        if not future.done():
            await self._send({'op': 'end', 'req': req})
        return (await future)['descriptor']

    async def subscribe(self, ids: Optional[List[str]], policy: str, data: bool, queue: Optional[int]) -> int:
        message: Dict[str, Any] = {'op': 'subscribe', 'policy': policy, 'data': data}
        if ids is not None:
            message['ids'] = list(ids)
        if queue is not None:
            message['queue'] = queue
        reply = await self.call(message)
        if data:
            self._data_subs.add(reply['sub'])
        return reply['sub']

    async def next_event(self, sub: int) -> Optional[Tuple[Dict[str, Any], Any, Any]]:
        """The next (event, frame header, bytes) of ``sub``; None once the connection ended."""
        queue = self._events[sub]
        if not queue.empty():
            return queue.get_nowait()
        if self._reader is None or self._reader.done():
            return None
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():      # also when our caller gave up (a timeout cancels us)
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return queue.get_nowait() if not queue.empty() else None

    async def aclose(self) -> None:
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 5)
            except Exception:  # already gone: nothing to close
                pass
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except BaseException:
                pass
