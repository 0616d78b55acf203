"""Byte-exact round trips for every mode and dtype, regions, out=, views by strides, line-based copies — per transport."""

from __future__ import annotations

import numpy as np
import pytest

import pixelport
from pixelport.descriptor import MODES, TYPESTRS, mode_shape

RNG = np.random.default_rng(15)


def random_array(shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = RNG.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    if dtype.kind == 'b':
        return (raw[:int(np.prod(shape))] & 1).astype(bool).reshape(shape)
    if dtype.kind == 'f':     # random bits may be NaN, and NaN != NaN: compare bytes, not values
        pass
    return raw.view(dtype).reshape(shape)


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


@pytest.mark.parametrize('mode', list(MODES))
def test_every_mode_round_trips(store, new_id, mode):
    shape, dtype = mode_shape(mode, 7, 5)
    pixels = random_array(shape, dtype)
    d = store.put(new_id, pixels, mode=mode)
    assert d['mode'] == mode and tuple(d['shape']) == shape
    got = store.get(new_id)
    assert same_bytes(got, pixels)
    assert got.flags.writeable, 'a copy is the caller\'s'
    # Overwrite: a new generation with other bytes.
    again = random_array(shape, dtype)
    d2 = store.put(new_id, again)
    assert d2['generation'] > d['generation']
    assert same_bytes(store.get(new_id), again)
    store.delete(new_id)


@pytest.mark.parametrize('typestr', TYPESTRS)
def test_every_dtype_round_trips(store, new_id, typestr):
    pixels = random_array((3, 5, 2), typestr)
    d = store.put(new_id, pixels)
    assert d['typestr'] == typestr and d['shape'] == [3, 5, 2]
    got = store.get(new_id)
    assert got.dtype.str[1:] == np.dtype(typestr).str[1:] and same_bytes(got, pixels)
    store.delete(new_id)


def test_put_takes_any_buffer(store, new_id):
    store.create(new_id, width=4, height=2, mode='L')
    store.put(new_id, bytes(range(8)))                      # the buffer protocol
    assert store.get(new_id).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    store.put(new_id, bytearray(range(10, 18)))
    assert store.get(new_id)[1, 3] == 17

    class Interface:                                        # only __array_interface__
        def __init__(self, a):
            self.__array_interface__ = a.__array_interface__
            self._keep = a
    store.put(new_id, Interface(np.full((2, 4), 9, np.uint8)))
    assert (store.get(new_id) == 9).all()
    with pytest.raises(pixelport.PixelportError) as caught:
        store.put(new_id, bytes(3))
    assert caught.value.code == 'PXP_ERR_BYTE_COUNT'
    store.delete(new_id)


def test_regions_and_out(store, new_id):
    pixels = random_array((6, 10, 3), np.uint8)
    store.put(new_id, pixels, mode='RGB')
    assert same_bytes(store.get(new_id, region=(2, 1, 3, 4)), pixels[1:5, 2:5])
    assert same_bytes(store.get(new_id, region={'x': 0, 'y': 5, 'width': 10, 'height': 1}), pixels[5:6])
    out = np.zeros((6, 10, 3), np.uint8)
    assert store.get(new_id, out=out) is out and same_bytes(out, pixels)
    with pytest.raises(pixelport.PixelportError) as caught:
        store.get(new_id, region=(8, 0, 3, 1))
    assert caught.value.code == 'PXP_ERR_BAD_REGION'
    with pytest.raises(pixelport.PixelportError) as caught:
        store.get(new_id, out=np.zeros((2, 2), np.uint8))
    assert caught.value.code == 'PXP_ERR_BYTE_COUNT'
    store.delete(new_id)


def test_views_by_strides(store, new_id):
    pixels = random_array((6, 10), np.dtype('<u2'))
    store.put(new_id, pixels)
    v = store.view(new_id, (2, 1, 3, 4), view_id=new_id + '/roi')
    ai = v['__array_interface__']
    assert v['base'] == new_id and ai['strides'] == [20, 2]
    # The view's bytes are the base's, read by the view's strides and offset.
    base_bytes = store.get(new_id).tobytes()
    in_place = np.ndarray(tuple(ai['shape']), np.dtype(ai['typestr']), buffer=base_bytes,
                          offset=ai.get('offset', 0), strides=tuple(ai['strides']))
    assert same_bytes(in_place, pixels[1:5, 2:5])
    assert same_bytes(store.get(v['id']), pixels[1:5, 2:5])
    with store.open(v['id']) as img:
        assert same_bytes(img.array, pixels[1:5, 2:5])
        with img.write() as a:                              # writing a view writes its rectangle of the base
            a[...] = 7
    expected = pixels.copy()
    expected[1:5, 2:5] = 7
    assert same_bytes(store.get(new_id), expected)
    store.delete(new_id)


def test_line_based_images_give_read_only_copies(store, new_id):
    d = store.create(new_id, width=5, height=3, mode='RGB', layout='lines')
    assert d['layout'] == 'lines' and d['readonly'] is True and d['copied'] is True
    pixels = random_array((3, 5, 3), np.uint8)
    store.put(new_id, pixels)
    assert same_bytes(store.get(new_id), pixels)
    with store.open(new_id) as img:
        a = img.array
        assert same_bytes(a, pixels)
        assert not a.flags.writeable, 'a contiguous copy, marked read-only: writes would not reach the image'
        with pytest.raises(ValueError):
            a[0, 0, 0] = 1
        with img.write() as w:                              # but the image itself is writable
            w[0] = 200
        assert img.last_generation == img.generation
    assert (store.get(new_id)[0] == 200).all()
    store.delete(new_id)


def test_catalog(store, new_id):
    d = store.create(new_id, shape=[4], typestr='<f8', readonly=True)
    assert d['id'] == new_id and d['readonly'] is True
    assert new_id in [x['id'] for x in store.list()]
    assert store.describe(new_id)['byteLength'] == 32
    with pytest.raises(pixelport.PixelportError) as caught:
        store.put(new_id, np.zeros(4))
    assert caught.value.code == 'PXP_ERR_READONLY'
    with pytest.raises(pixelport.PixelportError) as caught:
        store.create(new_id, shape=[4], typestr='<f8')
    assert caught.value.code == 'PXP_ERR_ALREADY_EXISTS'
    store.delete(new_id)
    with pytest.raises(pixelport.PixelportError) as caught:
        store.describe(new_id)
    assert caught.value.code == 'PXP_ERR_NOT_FOUND'
    with pytest.raises(pixelport.PixelportError) as caught:
        store.get(new_id)
    assert caught.value.code == 'PXP_ERR_NOT_FOUND'
    with pytest.raises(pixelport.PixelportError) as caught:
        store.create('bad//id', width=1, height=1, mode='L')
    assert caught.value.code == 'PXP_ERR_BAD_ID'


def test_remote_and_local_arrays(store, new_id):
    store.put(new_id, np.arange(12, dtype=np.uint8).reshape(3, 4))
    with store.open(new_id) as img:
        assert img.local == (store.transport == 'shm')
        a = img.array
        assert not a.flags.writeable
        store.put(new_id, np.full((3, 4), 5, np.uint8))
        if img.local:
            assert (a == 5).all(), 'zero-copy: the live memory'
        else:
            assert a[0, 1] == 1, 'a copy of the generation it was taken from'
        copy, generation = img.read()
        assert (copy == 5).all() and generation == img.generation
    store.delete(new_id)


def test_large_images_in_many_chunks(store, new_id):
    # Over 1 MiB: a chunked WebSocket upload and a multi-chunk stream; a large HTTP body read in place.
    pixels = random_array((700, 1000, 3), np.uint8)
    store.put(new_id, pixels, mode='RGB')
    assert same_bytes(store.get(new_id), pixels)
    assert same_bytes(store.get(new_id, region=(900, 650, 100, 50)), pixels[650:700, 900:1000])
    store.delete(new_id)


def test_float16_tensor_of_eight_dimensions(store, new_id):
    """numpy float16 (typestr <f2) in 8 dimensions: values, not only bytes, come back."""
    tensor = (np.arange(2 * 3 * 1 * 2 * 1 * 2 * 1 * 2, dtype=np.float16) / 4 - 3).reshape(2, 3, 1, 2, 1, 2, 1, 2)
    d = store.put(new_id, tensor)
    assert d['typestr'] == '<f2' and d['shape'] == list(tensor.shape)
    got = store.get(new_id)
    assert got.dtype == np.float16 and got.shape == tensor.shape and (got == tensor).all()
    store.delete(new_id)
