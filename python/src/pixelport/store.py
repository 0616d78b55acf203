"""``connect()`` and the Store: one API over shared memory, HTTP and WebSocket."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import ws as _ws
from ._loop import LoopThread
from .registration import Registration
from .descriptor import Descriptor, Region, as_array, crop, deliver, region_tuple, spec_for
from .errors import CLOSED, PixelportError, closed
from .http import HttpClient, image_path
from .image import Image, SharedImage
from .shm import Geometry
from .subscription import Subscription

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

TRANSPORTS = ('shm', 'http', 'ws')


def connect(url: str, token: Optional[str] = None, transport: Optional[str] = None, timeout: float = 30.0,
            reconnect: bool = True) -> 'Store':
    """Connect to the server at ``url`` (``http://host:port``).

    Without ``transport``: shared memory when the server runs on this host with ``--shm`` and this user can map
    its segments (found through ``GET /shm``, which needs an admin token when the server has tokens);
    otherwise HTTP for requests and a WebSocket for subscriptions. ``transport='shm' | 'http' | 'ws'`` forces
    one ('shm' fails with ``PXP_ERR_SHM`` if it is not possible; 'ws' sends requests over the WebSocket too).

    Over shared memory the store rides through a restart of the server (``serve --recover`` or ``--keep``): calls
    made while the server is down fail with ``PXP_ERR_CLOSED``; the first call after it is back attaches again
    and re-takes the leases of every open image. ``reconnect=False`` makes the first failure final.
    """
    return Store(url, token=token, transport=transport, timeout=timeout, reconnect=reconnect)


class Store:
    """A connection to one server. Safe to use from one thread at a time; ``close()`` it (or use ``with``)."""

    def __init__(self, url: str, token: Optional[str] = None, transport: Optional[str] = None,
                 timeout: float = 30.0, reconnect: bool = True) -> None:
        if transport is not None and transport not in TRANSPORTS:
            raise PixelportError('PXP_ERR_VALIDATION', 'transport must be one of %s, not %r' % (TRANSPORTS, transport))
        self.url = url
        self.token = token
        self.timeout = timeout
        self._http = HttpClient(url, token, timeout)
        self._attach: Optional[Registration] = None
        self._loop: Optional[LoopThread] = None
        self._ws: Optional[_ws.WsConnection] = None
        self._subs: List[Subscription] = []
        self.closed = False
        self.shm_reason: Optional[str] = None
        """Why shared memory is not used (None when it is)."""
        if transport in (None, 'shm'):
            try:
                info = self._http.json('GET', '/shm')
                if not info.get('enabled'):
                    raise PixelportError('PXP_ERR_SHM', 'the server does not use shared memory (%s)' % info.get('reason'))
                self._attach = Registration(info['table'], info['socket'], timeout, reconnect)
            except PixelportError as err:
                if transport == 'shm' or err.code == CLOSED:
                    raise
                self.shm_reason = err.message
        self.transport: str = 'shm' if self._attach is not None else (transport or 'http')
        if self.transport == 'http' and transport == 'http':
            self._reachable()
        if self.transport == 'ws':
            self._ws_connection()

    def _reachable(self) -> None:
        """Fail at connect (PXP_ERR_CLOSED) when nothing answers; any answer at all will do."""
        try:
            self._http.request('GET', '/healthz')
        except PixelportError as err:
            if err.code == CLOSED:
                raise

    # ---- transports ---------------------------------------------------------------------------------

    def _loop_thread(self) -> LoopThread:
        self._check()
        if self._loop is None:
            self._loop = LoopThread()
        return self._loop

    def _ws_connection(self) -> _ws.WsConnection:
        if self._ws is None or self._ws.error is not None:
            loop = self._loop_thread()
            self._ws = loop.run(_ws.WsConnection(_ws.ws_url(self.url), self.token).open(), self.timeout)
        return self._ws

    def _ws_call(self, message: Dict[str, Any]) -> Any:
        return self._loop_thread().run(self._ws_connection().call(message), self.timeout)

    def _check(self) -> None:
        if self.closed:
            raise closed('this store was closed')

    # ---- the catalog --------------------------------------------------------------------------------

    def list(self) -> List[Descriptor]:
        """Every image's descriptor (views included), in creation order."""
        self._check()
        if self.transport == 'shm':
            found = self._attach.request('list')  # type: ignore[union-attr]
            return found['images'] if isinstance(found, dict) else found
        if self.transport == 'ws':
            return self._ws_call({'op': 'list'})['images']
        images: List[Descriptor] = []
        query: Dict[str, Any] = {}
        while True:
            page = self._http.json('GET', '/images', query=query)
            images.extend(page['images'])
            # Paged answers (limit + cursor) carry the cursor of the next page.
            cursor = page.get('nextCursor') or page.get('cursor') or page.get('next')
            if not cursor or not page['images']:
                return images
            query = {'cursor': cursor}

    def describe(self, image_id: str) -> Descriptor:
        """The descriptor of ``image_id`` (``PXP_ERR_NOT_FOUND`` if there is none)."""
        self._check()
        if self.transport == 'shm':
            return self._attach.request('describe', id=image_id)  # type: ignore[union-attr]
        if self.transport == 'ws':
            return self._ws_call({'op': 'describe', 'id': image_id})['descriptor']
        return self._http.json('GET', image_path(image_id))

    def create(self, id: Optional[str] = None, *, width: Optional[int] = None, height: Optional[int] = None,
               mode: Optional[str] = None, shape: Optional[Iterable[int]] = None, typestr: Optional[str] = None,
               layout: Optional[str] = None, readonly: Optional[bool] = None, frames: Optional[int] = None) -> Descriptor:
        """Create a zero-filled image: ``width, height, mode`` or ``shape, typestr`` (+ layout, readonly, frames)."""
        self._check()
        spec: Dict[str, Any] = dict(id=id, width=width, height=height, mode=mode, layout=layout, readonly=readonly,
                                    frames=frames, shape=None if shape is None else [int(n) for n in shape], typestr=typestr)
        spec = {k: v for k, v in spec.items() if v is not None}
        if self.transport == 'shm':
            return self._attach.request('create', request=spec)  # type: ignore[union-attr]
        if self.transport == 'ws':
            return self._ws_call(dict(spec, op='create'))['descriptor']
        return self._http.json('POST', '/images', json_body=spec)

    def view(self, image_id: str, region: Region, view_id: Optional[str] = None,
             readonly: Optional[bool] = None) -> Descriptor:
        """A zero-copy view of a rectangle of ``image_id``: its descriptor (strides into the base image)."""
        self._check()
        x, y, w, h = region_tuple(region)  # type: ignore[misc]
        spec: Dict[str, Any] = {'x': x, 'y': y, 'width': w, 'height': h}
        if view_id is not None:
            spec['id'] = view_id
        if readonly is not None:
            spec['readonly'] = readonly
        if self.transport == 'shm':
            return self._attach.request('view', id=image_id, view=spec)  # type: ignore[union-attr]
        # The WebSocket protocol has no view request: views are made over HTTP.
        return self._http.json('POST', image_path(image_id) + '/views', json_body=spec)

    def delete(self, image_id: str) -> None:
        """Delete an image and its views (memory is reused once nobody holds it)."""
        self._check()
        if self.transport == 'shm':
            self._attach.request('delete', id=image_id)  # type: ignore[union-attr]
        elif self.transport == 'ws':
            self._ws_call({'op': 'delete', 'id': image_id})
        else:
            self._http.request('DELETE', image_path(image_id))

    # ---- pixels ---------------------------------------------------------------------------------------

    def put(self, image_id: str, array: Any, *, mode: Optional[str] = None, layout: Optional[str] = None,
            readonly: Optional[bool] = None, frames: Optional[int] = None) -> Descriptor:
        """Write ``array`` (anything with ``__array_interface__`` or the buffer protocol) as ``image_id``.

        Overwrites an existing image (same byte count, a new generation) or creates one: with ``mode`` when
        given, else the array's shape and dtype. Returns the descriptor after the write.
        """
        self._check()
        source = as_array(array)
        if self.transport == 'shm':
            try:
                self._attach.request('describe', id=image_id)  # type: ignore[union-attr]
            except PixelportError as err:
                if err.code != 'PXP_ERR_NOT_FOUND':
                    raise
                spec = spec_for(source, mode, layout=layout, readonly=readonly, frames=frames)
                if readonly:
                    # A read-only image cannot be written after it is made: create it with its bytes.
                    return self._http_create(image_id, source, spec)
                self._attach.request('create', request=dict(spec, id=image_id))  # type: ignore[union-attr]
            with self.open(image_id) as img:
                with img.write() as target:
                    _fill(target, source, image_id)
            return self.describe(image_id)
        if self.transport == 'ws':
            fields: Dict[str, Any] = {'id': image_id}
            try:
                self.describe(image_id)
            except PixelportError as err:
                if err.code != 'PXP_ERR_NOT_FOUND':
                    raise
                fields.update(spec_for(source, mode, layout=layout, readonly=readonly, frames=frames))
            return self._ws_put(fields, source)
        try:
            self.describe(image_id)
            return self._put_existing(image_id, source)
        except PixelportError as err:
            if err.code != 'PXP_ERR_NOT_FOUND':
                raise
        return self._http_create(image_id, source, spec_for(source, mode, layout=layout, readonly=readonly, frames=frames))

    def _http_create(self, image_id: str, source: np.ndarray, spec: Dict[str, Any]) -> Descriptor:
        query = {k: (','.join(map(str, v)) if k == 'shape' else str(v).lower() if isinstance(v, bool) else v)
                 for k, v in spec.items()}
        return self._http.upload('POST', '/images', _bytes(source), query=dict(query, id=image_id))

    def _ws_put(self, fields: Dict[str, Any], source: np.ndarray) -> Descriptor:
        return self._loop_thread().run(self._ws_connection().put(_bytes(source), fields), self.timeout)

    def _put_existing(self, image_id: str, source: np.ndarray) -> Descriptor:
        if self.transport == 'ws':
            return self._ws_put({'id': image_id}, source)
        return self._http.upload('PUT', image_path(image_id) + '/data', _bytes(source))

    def get(self, image_id: str, region: Optional[Region] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """A consistent copy of one generation of ``image_id`` (or of its ``region``), optionally into ``out``."""
        self._check()
        if self.transport == 'ws':
            frame, data = self._loop_thread().run(self._ws_connection().get(image_id, region_tuple(region)), self.timeout)
            return deliver(_frame_array(frame, data), out)
        if region is None and self.transport == 'shm':
            return self._read(image_id, out)[0]
        copy, _ = self._read(image_id, None)
        return deliver(crop(copy, region) if region is not None else copy, out)

    def _read(self, image_id: str, out: Optional[np.ndarray]) -> Tuple[np.ndarray, int]:
        """(consistent copy, its generation)."""
        if self.transport == 'shm':
            return Geometry(self.describe(image_id)).copy(out)
        if self.transport == 'ws':
            frame, data = self._loop_thread().run(self._ws_connection().get(image_id, None), self.timeout)
            return deliver(_frame_array(frame, data), out), int(frame['generation'])
        headers, raw = self._http.download(image_path(image_id) + '/data')
        shape = tuple(int(n) for n in headers['X-Pixelport-Shape'].split(',') if n)
        data = raw.view(np.dtype(headers['X-Pixelport-Typestr'])).reshape(shape)
        return deliver(data, out), int(headers['X-Pixelport-Generation'])

    def open(self, image_id: str) -> Image:
        """Open ``image_id``: a SharedImage (zero-copy, with a lease) over shared memory, else a remote Image."""
        self._check()
        if self.transport == 'shm':
            connection = self._attach.connection  # type: ignore[union-attr]
            opened = connection.request('open', id=image_id)
            image = SharedImage(self, opened['slot'], opened['descriptor'])
            image._registered_on = connection
            self._attach.opened(image)  # type: ignore[union-attr]
            return image
        return Image(self, self.describe(image_id))

    def from_pil(self, img: 'PILImage.Image', image_id: Optional[str] = None, **spec: Any) -> Descriptor:
        """Upload a ``PIL.Image`` (see ``pixelport.from_pil``)."""
        from .pil import from_pil
        return from_pil(self, img, image_id, **spec)

    # ---- events -------------------------------------------------------------------------------------

    def subscribe(self, ids: Optional[Iterable[str]] = None, policy: str = 'latest', data: bool = True,
                  queue: Optional[int] = None) -> Subscription:
        """Events (created, updated, deleted), with each update's pixels when ``data`` — over a WebSocket.

        Iterate it (``for event in sub``) or ``async for event in sub``. ``policy='latest'`` conflates updates
        a slow reader has not taken yet; ``'all'`` delivers every one, in order, and ends with
        ``PXP_ERR_SUBSCRIPTION_OVERFLOW`` if more than ``queue`` wait. ``close()`` it when done.
        """
        sub = Subscription(self, None if ids is None else list(ids), policy, data, queue)
        self._subs.append(sub)
        return sub

    def _wait_remote(self, image_id: str, generation: int, timeout: Optional[float]) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not _ws.available():
            while True:       # no WebSocket library: look again every 20 ms
                current = int(self.describe(image_id)['generation'])
                if current != generation:
                    return current
                if deadline is not None and time.monotonic() > deadline:
                    raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s waiting for %s' % (timeout, image_id))
                time.sleep(0.02)
        with self.subscribe([image_id], 'latest', data=False) as sub:
            current = int(self.describe(image_id)['generation'])     # after subscribing: no commit slips by
            while current == generation:
                left = None if deadline is None else deadline - time.monotonic()
                event = sub.next(timeout=left)
                if event is None:
                    raise PixelportError('PXP_ERR_TIMEOUT', 'Timed out after %s s waiting for %s' % (timeout, image_id))
                if event.type == 'deleted':
                    raise PixelportError('PXP_ERR_NOT_FOUND', 'Image "%s" not found' % image_id)
                current = event.generation
            return current

    # ---- life ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection; the server gives back whatever this store held. Idempotent."""
        if self.closed:
            return
        for sub in list(self._subs):
            sub.close()
        self.closed = True
        if self._attach is not None:
            self._attach.close()
        if self._ws is not None and self._loop is not None:
            try:
                self._loop.run(self._ws.aclose(), 10)
            except PixelportError:
                pass
        if self._loop is not None:
            self._loop.close()

    def __enter__(self) -> 'Store':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return '<pixelport.Store %s via %s%s>' % (self.url, self.transport, ' closed' if self.closed else '')


def _bytes(source: np.ndarray) -> memoryview:
    """The array's bytes in C order, without a copy when it is already contiguous."""
    return memoryview(np.ascontiguousarray(source)).cast('B')


def _fill(target: np.ndarray, source: np.ndarray, image_id: str) -> None:
    """Copy ``source``'s bytes into ``target`` (same byte count; C order, like an HTTP PUT)."""
    if source.nbytes != target.nbytes:
        raise PixelportError('PXP_ERR_BYTE_COUNT', 'Image "%s" takes %d bytes, not %d' % (image_id, target.nbytes, source.nbytes))
    flat = np.ascontiguousarray(source).reshape(-1).view(np.uint8)
    target[...] = flat.view(target.dtype).reshape(target.shape)


def _frame_array(frame: Dict[str, Any], data: bytearray) -> np.ndarray:
    return np.frombuffer(data, np.dtype(frame['typestr'])).reshape([int(n) for n in frame['shape']])
