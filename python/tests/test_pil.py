"""Pillow both ways for every mode and transport; shared memory for the modes Pillow can wrap (shm, block)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

import pixelport
from pixelport.descriptor import MODES, mode_shape
from pixelport.pil import SHARED_MODES, pil_array

RNG = np.random.default_rng(12)


def pixels_for(mode: str, width: int = 5, height: int = 3) -> np.ndarray:
    shape, dtype = mode_shape(mode, width, height)
    if dtype.kind == 'b':
        return RNG.integers(0, 2, size=shape).astype(bool)
    if dtype.kind == 'f':
        return RNG.standard_normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype.newbyteorder('=')).astype(dtype)


@pytest.mark.parametrize('mode', list(MODES))
def test_to_pil_every_mode(store, new_id, mode):
    pixels = pixels_for(mode)
    store.put(new_id, pixels, mode=mode)
    with store.open(new_id) as img:
        pil = img.to_pil()
        assert pil.mode == mode and pil.size == (5, 3)
        assert np.array_equal(pil_array(pil), pixels), 'the PIL image has exactly the stored pixels'
        shared = store.transport == 'shm' and mode in SHARED_MODES
        assert pil.info['pixelport_copy'] is (not shared)
        if shared:
            # A write through Pillow is a write to the shared memory: numpy and the server see it.
            value = {'L': 7, 'RGBA': (1, 2, 3, 4), 'RGBX': (5, 6, 7, 0), 'CMYK': (9, 8, 7, 6),
                     'I;16': 4321, 'I': -123456, 'F': 2.5}[mode]
            with img.write():
                pil.putpixel((4, 2), value)
            expected = pixels.copy()
            expected[2, 4] = value
            assert np.array_equal(img.array, expected), 'numpy over the same memory sees it'
            with pixelport.connect(store.url, transport='http') as remote:
                assert np.array_equal(remote.get(new_id), expected), 'and the server serves it'
            # And the other way round: a server write shows in the PIL image without a new to_pil().
            store.put(new_id, pixels)
            assert np.array_equal(pil_array(pil), pixels)
    store.delete(new_id)


@pytest.mark.parametrize('mode', list(MODES))
def test_from_pil_every_mode(store, new_id, mode):
    pixels = pixels_for(mode, 6, 4)
    raw_mode = {'1': '1;8'}.get(mode, mode)
    data = (pixels.astype(np.uint8) if mode == '1' else pixels).tobytes()
    pil = PILImage.frombytes(mode, (6, 4), data, 'raw', raw_mode)
    d = pixelport.from_pil(store, pil, new_id)
    assert d['mode'] == mode and d['width'] == 6 and d['height'] == 4
    assert np.array_equal(store.get(new_id), pixels)
    again = store.from_pil(pil.transpose(PILImage.Transpose.FLIP_TOP_BOTTOM), new_id)   # overwrites
    assert again['generation'] > d['generation']
    assert np.array_equal(store.get(new_id), pixels[::-1])
    store.delete(new_id)
    picked = pixelport.from_pil(store, pil)                 # no id: the server names it
    assert picked['id'].startswith('img-') and np.array_equal(store.get(picked['id']), pixels)
    store.delete(picked['id'])


def test_copies_for_views_frames_and_raw_shapes(store, new_id):
    store.put(new_id, pixels_for('L', 8, 6), mode='L')
    v = store.view(new_id, (1, 1, 4, 4), view_id=new_id + '/v')
    with store.open(v['id']) as img:
        assert img.to_pil().info['pixelport_copy'] is True, 'a strided view cannot be wrapped'
    store.create(new_id + '/f', width=4, height=4, mode='L', frames=2)
    with store.open(new_id + '/f') as img:
        assert img.to_pil().info['pixelport_copy'] is True, 'frame buffers move: a copy of one generation'
    store.put(new_id + '/raw', np.zeros((2, 2, 5), np.uint8))
    with store.open(new_id + '/raw') as img:
        with pytest.raises(pixelport.PixelportError) as caught:
            img.to_pil()
        assert caught.value.code == 'PXP_ERR_BAD_MODE'
    store.delete(new_id)
    store.delete(new_id + '/f')
    store.delete(new_id + '/raw')
