"""One image, opened from a store: shared memory when local, a copy when remote. Same API either way."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator, Optional, Tuple

import numpy as np

from .descriptor import Descriptor, dtype_of, shape_of
from .errors import PixelportError, closed
from .shm import Geometry

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from .store import Store

log = logging.getLogger('pixelport')


class Loan:
    """A frame buffer lent to this writer: fill ``array``, then ``publish()`` it (or ``cancel()``).

    As a context manager: published on success, cancelled on an exception.
    """

    def __init__(self, image: 'Image', frame: int, array: np.ndarray) -> None:
        self.image = image
        self.frame = frame
        self.array = array
        self.done = False
        self.generation: Optional[int] = None
        self._held: Any = None          # the attach connection the loan was taken on (shared memory only)

    def publish(self) -> int:
        """Make the loaned buffer the image's pixels (a new generation, readers never disturbed)."""
        self._check()
        self.generation = self.image._publish(self)
        self.done = True
        return self.generation

    def cancel(self) -> None:
        """Give the buffer back unpublished."""
        self._check()
        self.done = True
        self.image._cancel(self)

    def _check(self) -> None:
        if self.done:
            raise PixelportError('PXP_ERR_VALIDATION', 'this loan was already published or cancelled')

    def __enter__(self) -> np.ndarray:
        return self.array

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if self.done:
            return
        if kind is None:
            self.publish()
        else:
            self.cancel()


class Image:
    """An open image. ``close()`` it (or use ``with``) when done.

    Attributes: ``id``, ``descriptor`` (when opened), ``shape``, ``dtype``, ``mode``, ``frames``, ``readonly``
    (the image refuses writes), ``local`` (shared memory), ``last_generation`` (after a write).
    """

    local = False

    def __init__(self, store: 'Store', descriptor: Descriptor) -> None:
        self._store = store
        self.descriptor = descriptor
        self.id: str = descriptor['id']
        self.shape: Tuple[int, ...] = shape_of(descriptor)
        self.dtype: np.dtype = dtype_of(descriptor)
        self.mode: Optional[str] = descriptor.get('mode')
        self.frames: int = int((descriptor.get('location') or {}).get('frames') or 1)
        self.readonly = bool(descriptor['readonly']) and descriptor.get('layout') != 'lines'
        self.line_based = descriptor.get('layout') == 'lines'
        self.last_generation: Optional[int] = None
        self.closed = False

    # ---- reading -------------------------------------------------------------------------------------

    @property
    def array(self) -> np.ndarray:
        """The pixels as a numpy array.

        Local block images: zero-copy and read-only over the live memory (it changes as writers commit;
        write through ``write()``). Line-based images and remote images: a read-only copy of one generation.
        """
        self._check()
        copy, _ = self.read()
        copy.flags.writeable = False
        return copy

    @property
    def generation(self) -> int:
        """Committed writes so far."""
        self._check()
        return int(self._store.describe(self.id)['generation'])

    def read(self, out: Optional[np.ndarray] = None, timeout: float = 5.0) -> Tuple[np.ndarray, int]:
        """A consistent copy of one committed generation: ``(array, generation)``."""
        self._check()
        return self._store._read(self.id, out)

    def wait_for_change(self, generation: int, timeout: Optional[float] = None) -> int:
        """Block until the generation differs from ``generation``; returns the new one.

        ``PXP_ERR_TIMEOUT`` after ``timeout`` seconds, ``PXP_ERR_NOT_FOUND`` if the image is deleted.
        """
        self._check()
        return self._store._wait_remote(self.id, generation, timeout)

    # ---- writing -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, timeout: Optional[float] = None) -> Iterator[np.ndarray]:
        """``with image.write() as a: a[...] = x`` — a new generation is committed on exit.

        If the block raises, what it wrote is **still committed** (local images are written in place, so
        those pixels have changed already; the others send what the block wrote), the error is logged on
        the ``pixelport`` logger and re-raised. Frame-buffered images instead cancel the loan: nothing of a
        failed block is published. ``self.last_generation`` holds the committed generation.
        """
        self._check()
        self._writable()
        if self.frames > 1:
            with self.loan(timeout) as a:
                yield a
            return
        staging, _ = self.read()
        failed: Optional[BaseException] = None
        try:
            yield staging
        except BaseException as err:
            failed = err
            raise
        finally:
            self.last_generation = int(self._store._put_existing(self.id, staging)['generation'])
            if failed is not None:
                log.error('write to %s raised %r; what it wrote is committed as generation %d',
                          self.id, failed, self.last_generation)

    def loan(self, timeout: Optional[float] = None) -> Loan:
        """Borrow a frame buffer (frame-buffered images), holding the current pixels: fill, then publish."""
        self._check()
        self._writable()
        if self.frames < 2:
            raise PixelportError('PXP_ERR_VALIDATION', 'Image "%s" has no frame buffers (create it with frames=2..8)' % self.id)
        staging, _ = self.read()
        return Loan(self, -1, staging)

    def publish(self, loan: Loan) -> int:
        """Publish ``loan`` (same as ``loan.publish()``)."""
        return loan.publish()

    def _publish(self, loan: Loan) -> int:
        self.last_generation = int(self._store._put_existing(self.id, loan.array)['generation'])
        return self.last_generation

    def _cancel(self, loan: Loan) -> None:
        pass

    # ---- Pillow ---------------------------------------------------------------------------------------

    def to_pil(self) -> 'PILImage.Image':
        """A ``PIL.Image`` of this image's mode (see ``pixelport.pil.to_pil``)."""
        from .pil import to_pil
        return to_pil(self)

    # ---- life -----------------------------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True

    def _writable(self) -> None:
        if self.readonly:
            raise PixelportError('PXP_ERR_READONLY', 'Image "%s" is read-only' % self.id)

    def _check(self) -> None:
        if self.closed:
            raise PixelportError('PXP_ERR_NOT_LEASED', 'Handle for "%s" was released' % self.id)

    def __enter__(self) -> 'Image':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return '<pixelport.Image %r %s %s%s>' % (self.id, self.shape, self.dtype, ' local' if self.local else '')


class SharedImage(Image):
    """An image in the server's shared memory, with a lease: its memory stays this image's until close()."""

    local = True

    def __init__(self, store: 'Store', slot: int, descriptor: Descriptor) -> None:
        super().__init__(store, descriptor)
        self._slot = slot
        self._attach = store._attach
        # The attach connection that holds this image's lease: a restarted server's registration re-opens it.
        self._registered_on: Any = None
        self._lost: Optional[str] = None
        self._geometry = Geometry(descriptor)
        self.readonly = self._geometry.image_readonly
        self.frames = self._geometry.frames

    @property
    def array(self) -> np.ndarray:
        self._check()
        g = self._geometry
        if g.kind != 'block':
            return super().array     # line-based: a read-only contiguous copy, as the seed proposed
        return g.frame_array(g.front())

    @property
    def generation(self) -> int:
        self._check()
        return self._geometry.generation()

    def read(self, out: Optional[np.ndarray] = None, timeout: float = 5.0) -> Tuple[np.ndarray, int]:
        self._check()
        return self._geometry.copy(out, timeout)

    def wait_for_change(self, generation: int, timeout: Optional[float] = None) -> int:
        """A futex wait: no polling. Also ``PXP_ERR_CLOSED`` if the server dies meanwhile."""
        self._check()
        return self._geometry.wait(generation, timeout, alive=self._attach.check_alive)

    def _lock_ms(self, timeout: Optional[float]) -> int:
        return int(1000 * (self._attach.lock_timeout if timeout is None else timeout))

    @contextlib.contextmanager
    def write(self, timeout: Optional[float] = None) -> Iterator[np.ndarray]:
        self._check()
        self._writable()
        g = self._geometry
        if g.frames > 1:
            with self.loan(timeout) as a:
                yield a
            return
        held = self._live()
        held.request('begin', slot=self._slot, timeoutMs=self._lock_ms(timeout))
        failed: Optional[BaseException] = None
        try:
            if g.kind == 'block':
                yield g.frame_array(0, writable=True)
            else:
                staging = np.empty(g.shape, g.dtype)
                g.gather_rows(staging)
                try:
                    yield staging
                finally:
                    g.scatter_rows(staging)
        except BaseException as err:
            failed = err
            raise
        finally:
            # Like every writer: what was written is committed, even if the block raised half way.
            self.last_generation = self._holder(held, 'write').request('commit', slot=self._slot)['generation']
            if failed is not None:
                log.error('write to %s raised %r; what it wrote is committed as generation %d',
                          self.id, failed, self.last_generation)

    def loan(self, timeout: Optional[float] = None) -> Loan:
        self._check()
        self._writable()
        g = self._geometry
        if g.frames < 2:
            raise PixelportError('PXP_ERR_VALIDATION', 'Image "%s" has no frame buffers (create it with frames=2..8)' % self.id)
        held = self._live()
        frame = held.request('loan', slot=self._slot, timeoutMs=self._lock_ms(timeout))['frame']
        try:
            target = g.frame_array(frame, writable=True)
            g.copy(target)          # start from the published pixels, so a partial update keeps the rest
        except BaseException:
            self._holder(held, 'loan').request('cancel', slot=self._slot, frame=frame)
            raise
        loan = Loan(self, frame, target)
        loan._held = held
        return loan

    def _publish(self, loan: Loan) -> int:
        self.last_generation = int(self._holder(loan._held, 'loan').request(
            'publish', slot=self._slot, frame=loan.frame, timeoutMs=self._lock_ms(None))['generation'])
        return self.last_generation

    def _cancel(self, loan: Loan) -> None:
        self._holder(loan._held, 'loan').request('cancel', slot=self._slot, frame=loan.frame)

    def close(self) -> None:
        """Give the lease back."""
        if not self.closed:
            self.closed = True
            self._attach.release(self)

    def _live(self) -> Any:
        """The live attach connection (attached again first if the server restarted), this image still valid."""
        connection = self._attach.connection
        self._check()
        return connection

    def _holder(self, held: Any, what: str) -> Any:
        """The connection a lock or loan was taken on, if it is still the live one.

        A lock or loan dies with the server that granted it: the next server closed the half-written frame as a
        new generation (or gave the loaned buffer back), so committing it now would be wrong. Write again.
        """
        if self._attach.connection is not held:
            raise closed('the server restarted during this %s of "%s"; the frame was closed by the restarted '
                         'server; %s again' % (what, self.id, what))
        return held

    def _check(self) -> None:
        super()._check()
        if self._lost is not None:
            raise PixelportError('PXP_ERR_NOT_FOUND', 'Image "%s" is gone after the server restarted: %s' % (self.id, self._lost))

    def _reregister(self, connection: Any) -> None:
        """Take this image's lease again from a server that adopted the store after a restart."""
        if self.closed or self._lost is not None:
            return
        try:
            opened = connection.request('open', id=self.id)
        except PixelportError as err:
            if err.code != 'PXP_ERR_NOT_FOUND':
                raise
            self._lost = 'it was not adopted by the restarted server (deleted before the restart?)'
            return
        if opened['slot'] != self._slot:
            connection.request('close', slot=opened['slot'])
            self._lost = 'the restarted server holds another image under its id'
            return
        self._registered_on = connection
