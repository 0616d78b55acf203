"""Modes, dtypes and descriptors: what the server's JSON means to numpy."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import PixelportError

Descriptor = Dict[str, Any]
"""An image descriptor as the server sends it (README, "The descriptor")."""

Region = Union[Mapping[str, int], Sequence[int]]
"""``{'x', 'y', 'width', 'height'}`` or ``(x, y, width, height)``: a rectangle of rows and columns."""

# Pillow's modes as the server stores them: typestr and channels (None: a 2-D image).
MODES: Dict[str, Tuple[str, Optional[int]]] = {
    '1': ('|b1', None), 'L': ('|u1', None), 'P': ('|u1', None), 'LA': ('|u1', 2), 'PA': ('|u1', 2),
    'RGB': ('|u1', 3), 'YCbCr': ('|u1', 3), 'LAB': ('|u1', 3), 'HSV': ('|u1', 3),
    'RGBA': ('|u1', 4), 'RGBX': ('|u1', 4), 'CMYK': ('|u1', 4),
    'I;16': ('<u2', None), 'I;16B': ('>u2', None), 'I': ('<i4', None), 'F': ('<f4', None),
}

# The element types the server accepts for a raw shape + typestr.
TYPESTRS = ('|u1', '|i1', '|b1', '<u2', '<i2', '<u4', '<i4', '<f4', '<f8', '<u8', '<i8',
            '>u2', '>i2', '>u4', '>i4', '>f4', '>f8', '<f2')

SPEC_FIELDS = ('id', 'width', 'height', 'mode', 'shape', 'typestr', 'layout', 'readonly', 'frames')


def mode_shape(mode: str, width: int, height: int) -> Tuple[Tuple[int, ...], np.dtype]:
    """The numpy shape and dtype of a ``mode`` image of ``width`` × ``height``."""
    if mode not in MODES:
        raise PixelportError('PXP_ERR_BAD_MODE', 'Unknown mode %r (one of %s)' % (mode, ' '.join(MODES)))
    typestr, channels = MODES[mode]
    shape = (height, width) if channels is None else (height, width, channels)
    return shape, np.dtype(typestr)


def shape_of(d: Descriptor) -> Tuple[int, ...]:
    return tuple(int(n) for n in d['shape'])


def dtype_of(d: Descriptor) -> np.dtype:
    return np.dtype(d['typestr'])


def typestr(dtype: np.dtype) -> str:
    """numpy's typestr as the server spells it (``|u1`` for bytes and booleans, explicit byte order else)."""
    s = np.dtype(dtype).str
    if s[1:] in ('u1', 'i1', 'b1'):
        return '|' + s[1:]
    return s


def as_array(data: Any) -> np.ndarray:
    """Any object with ``__array_interface__``, ``__array__`` or the buffer protocol, as an ndarray (no copy if possible)."""
    if isinstance(data, np.ndarray):
        return data
    try:
        return np.asarray(data)
    except Exception as err:  # pragma: no cover - numpy's own message is clear enough
        raise PixelportError('PXP_ERR_VALIDATION', 'not an array: %s' % err)


def spec_for(array: np.ndarray, mode: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    """A create spec that fits ``array``: a mode when given (checked against the array), else shape + typestr."""
    spec: Dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if mode is not None:
        shape, dtype = mode_shape(mode, array.shape[1] if array.ndim > 1 else 1, array.shape[0])
        if tuple(array.shape) != shape or array.dtype.itemsize != dtype.itemsize:
            raise PixelportError('PXP_ERR_BYTE_COUNT', 'a %s image needs shape %s of %s, not %s of %s'
                                 % (mode, shape, dtype, array.shape, array.dtype))
        spec.update(width=shape[1], height=shape[0], mode=mode)
    else:
        spec.update(shape=[int(n) for n in array.shape], typestr=typestr(array.dtype))
    return spec


def region_tuple(region: Optional[Region]) -> Optional[Tuple[int, int, int, int]]:
    """``(x, y, width, height)`` from either spelling, or None."""
    if region is None:
        return None
    if isinstance(region, Mapping):
        try:
            return int(region['x']), int(region['y']), int(region['width']), int(region['height'])
        except KeyError as err:
            raise PixelportError('PXP_ERR_VALIDATION', 'region needs x, y, width and height (missing %s)' % err)
    values = tuple(int(v) for v in region)
    if len(values) != 4:
        raise PixelportError('PXP_ERR_VALIDATION', 'region is (x, y, width, height)')
    return values  # type: ignore[return-value]


def crop(array: np.ndarray, region: Optional[Region]) -> np.ndarray:
    """The rectangle ``region`` of ``array`` (rows first, then columns), checked like the server does."""
    r = region_tuple(region)
    if r is None:
        return array
    x, y, w, h = r
    rows = array.shape[0]
    cols = array.shape[1] if array.ndim > 1 else 1
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > cols or y + h > rows:
        raise PixelportError('PXP_ERR_BAD_REGION', 'Region %s lies outside the %dx%d image' % (r, cols, rows))
    if array.ndim == 1:
        return array[y:y + h]
    return array[y:y + h, x:x + w]


def deliver(data: np.ndarray, out: Optional[np.ndarray]) -> np.ndarray:
    """``data`` itself, or copied into ``out`` (which must have its shape and dtype)."""
    if out is None:
        return data
    if tuple(out.shape) != tuple(data.shape) or out.dtype != data.dtype:
        raise PixelportError('PXP_ERR_BYTE_COUNT', 'out must be %s %s, not %s %s'
                             % (data.shape, data.dtype, out.shape, out.dtype))
    np.copyto(out, data)
    return out
