"""Pillow: an image as a ``PIL.Image`` (sharing its memory where Pillow can), and uploading one.

Pillow can wrap memory it does not own for the modes whose pixels it stores exactly as the server does,
one row after another with no padding: ``L``, ``RGBA``, ``RGBX``, ``CMYK``, ``I;16`` (through
``Image.frombuffer(mode, size, buffer, 'raw', mode, 0, 1)``), and ``I``, ``F`` (Pillow's own ``map_buffer``,
which ``frombuffer`` uses for the others; Pillow 9 does not route these two modes to it). Every other mode
(``RGB``, ``LA``, ``1``, …) is stored with padding or packing in Pillow, so it gets a copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .descriptor import MODES, Descriptor
from .errors import PixelportError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from .image import Image
    from .store import Store

SHARED_MODES = ('L', 'RGBA', 'RGBX', 'CMYK', 'I;16', 'I', 'F')

# How Pillow's raw decoder reads our bytes for each mode (the rest: the mode's own name).
_RAWMODE = {'1': '1;8', 'I': 'I', 'F': 'F'}


def _pil() -> Any:
    try:
        from PIL import Image as PILImage
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise PixelportError('PXP_ERR_VALIDATION', 'to_pil()/from_pil() need Pillow (pip install "pixelport[pil]")')
    return PILImage


def _shared(PILImage: Any, mode: str, size: 'tuple[int, int]', buffer: np.ndarray, writable: bool) -> Any:
    if mode in PILImage._MAPMODES:
        im = PILImage.frombuffer(mode, size, buffer, 'raw', mode, 0, 1)
    else:
        im = PILImage.new(mode, (1, 1))._new(PILImage.core.map_buffer(buffer, size, 'raw', 0, (mode, 0, 1)))
    # Pillow marks wrapped memory read-only and copies it on the first write; ours may be written.
    im.readonly = 0 if writable else 1
    return im


def to_pil(image: 'Image') -> 'PILImage.Image':
    """A ``PIL.Image`` of ``image``'s mode.

    A local, block-layout image with one frame buffer, in a mode of ``SHARED_MODES``, with C-contiguous pixels
    (not a strided view): the ``PIL.Image`` *is* the shared memory. A write through it (``putpixel``,
    ``paste``, drawing) is seen by the server and by numpy at once; wrap it in ``with image.write():`` to
    commit it as a new generation. Everything else: a copy of one generation, with
    ``info['pixelport_copy'] = True`` (``False`` when shared). ``info['pixelport_generation']`` is set on copies.
    """
    PILImage = _pil()
    mode = image.mode
    if mode is None or mode not in MODES:
        raise PixelportError('PXP_ERR_BAD_MODE', 'Image "%s" has no Pillow mode (shape %s, %s)' % (image.id, image.shape, image.dtype))
    height, width = image.shape[0], image.shape[1]
    geometry = getattr(image, '_geometry', None)
    if (mode in SHARED_MODES and geometry is not None and geometry.kind == 'block' and geometry.frames == 1
            and geometry.strides is None):
        writable = not image.readonly
        try:
            memory = geometry.frame_array(0, writable=writable)
        except PixelportError:          # mapped read-only here (a group member of a 0640 store)
            memory, writable = geometry.frame_array(0), False
        im = _shared(PILImage, mode, (width, height), memory, writable)
        im.info['pixelport_copy'] = False
        return im
    copy, generation = image.read()
    im = PILImage.frombytes(mode, (width, height), np.ascontiguousarray(copy).tobytes(), 'raw', _RAWMODE.get(mode, mode))
    im.info['pixelport_copy'] = True
    im.info['pixelport_generation'] = generation
    return im


def pil_array(img: 'PILImage.Image') -> np.ndarray:
    """The pixels of a ``PIL.Image`` as the numpy array the server stores for its mode."""
    mode = img.mode
    if mode not in MODES:
        raise PixelportError('PXP_ERR_BAD_MODE', 'Pillow mode %r has no Pixelport mode' % mode)
    typestr, channels = MODES[mode]
    shape = (img.height, img.width) if channels is None else (img.height, img.width, channels)
    array = np.asarray(img)           # Pillow's own array interface: bool for '1', '>u2' for 'I;16B', …
    if tuple(array.shape) != shape or array.dtype.itemsize != np.dtype(typestr).itemsize:
        raise PixelportError('PXP_ERR_BAD_MODE', 'Pillow gave %s %s for mode %s' % (array.shape, array.dtype, mode))
    return array


def from_pil(store: 'Store', img: 'PILImage.Image', image_id: Optional[str] = None, **spec: Any) -> Descriptor:
    """Upload a ``PIL.Image`` into ``store`` as ``image_id`` (created in the image's mode, or overwritten).

    ``spec`` may add ``layout``, ``readonly``, ``frames``. Returns the descriptor.
    """
    array = pil_array(img)
    if image_id is None:
        return _create_with(store, array, img.mode, spec)
    return store.put(image_id, array, mode=img.mode, **spec)


def _create_with(store: 'Store', array: np.ndarray, mode: str, spec: Any) -> Descriptor:
    """No id given: let the server pick one (create, then write)."""
    d = store.create(width=array.shape[1], height=array.shape[0], mode=mode, **spec)
    return store.put(d['id'], array)
