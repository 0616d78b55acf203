"""Shared memory in detail (the original single-file module's tests, kept): descriptor-only reads, the
attach registration, leases, write locks, frame loans, line-based images — against a real server with --shm.
"""

import json
import os
import secrets
import stat
import threading
import time
import unittest
import urllib.parse
import urllib.request

import numpy as np
import pytest

import pixelport


def http(method, url, body=None, headers=None):
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    h = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        h['content-type'] = 'application/json'
    elif isinstance(body, bytes):
        h['content-type'] = 'application/octet-stream'
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    with urllib.request.urlopen(req, timeout=10) as res:
        raw = res.read()
        return res.headers, (json.loads(raw) if res.headers.get('content-type', '').startswith('application/json') else raw)


@pytest.mark.usefixtures('unittest_server')
class ServerTest(unittest.TestCase):
    url = None
    prefix = ''

    def create(self, **spec):
        spec.setdefault('id', 'py-' + secrets.token_hex(4))
        _, d = http('POST', self.url + '/images', spec)
        return d

    def put(self, image_id, data):
        _, descriptor = http('PUT', self.url + '/images/' + urllib.parse.quote(image_id, safe='') + '/data', bytes(data))
        return descriptor['generation']

    def download(self, image_id):
        headers, body = http('GET', self.url + '/images/' + urllib.parse.quote(image_id, safe='') + '/data')
        return int(headers['x-pixelport-generation']), body


class DescriptorOnly(ServerTest):
    def test_array_over_live_memory(self):
        d = self.create(width=8, height=4, mode='RGB')
        pixels = np.arange(96, dtype=np.uint8)
        self.put(d['id'], pixels.tobytes())
        d = pixelport.describe(self.url, d['id'])
        self.assertTrue(d['location']['segment'].startswith('/' + getattr(self, 'prefix', '')))
        mode = stat.S_IMODE(os.stat('/dev/shm/' + d['location']['segment'][1:]).st_mode)
        self.assertEqual(mode, 0o600, 'segments are private by default')
        a = pixelport.array(d)
        self.assertEqual(a.shape, (4, 8, 3))
        np.testing.assert_array_equal(a.reshape(-1), pixels)
        with self.assertRaises(ValueError):
            a[0, 0, 0] = 1                      # read-only without a write lease
        self.put(d['id'], (pixels + 1).tobytes())
        self.assertEqual(int(a[0, 0, 0]), 1, 'the same memory: a later write shows through')
        copy, generation = pixelport.read(d)
        self.assertEqual(generation, 2)
        np.testing.assert_array_equal(copy.reshape(-1), pixels + 1)

    def test_wait_for_change_wakes_on_a_commit_and_times_out(self):
        d = self.create(width=4, height=4, mode='L')
        started = threading.Event()
        result = {}

        def waiter():
            started.set()
            result['generation'] = pixelport.wait_for_change(d, 0, timeout=10)
            result['at'] = time.monotonic()

        thread = threading.Thread(target=waiter)
        thread.start()
        started.wait()
        put_at = time.monotonic()
        self.put(d['id'], bytes(16))
        thread.join(10)
        self.assertEqual(result['generation'], 1)
        self.assertLess(result['at'] - put_at, 5)
        with self.assertRaises(pixelport.PixelportError) as caught:
            pixelport.wait_for_change(d, 1, timeout=0.05)
        self.assertEqual(caught.exception.code, 'PXP_ERR_TIMEOUT')

    def test_views_and_strides(self):
        d = self.create(width=10, height=6, mode='L')
        pixels = np.arange(60, dtype=np.uint8).reshape(6, 10)
        self.put(d['id'], pixels.tobytes())
        _, v = http('POST', self.url + '/images/' + d['id'] + '/views', {'x': 2, 'y': 1, 'width': 3, 'height': 4})
        np.testing.assert_array_equal(pixelport.array(v), pixels[1:5, 2:5])
        copy, _ = pixelport.read(v)
        np.testing.assert_array_equal(copy, pixels[1:5, 2:5])
        self.assertTrue(copy.flags.c_contiguous)

    def test_not_in_shared_memory(self):
        with self.assertRaises(pixelport.PixelportError) as caught:
            pixelport.read({'id': 'x', 'location': {'kind': 'block', 'block': 0}})
        self.assertEqual(caught.exception.code, 'PXP_ERR_SHM')
        with self.assertRaises(pixelport.PixelportError) as caught:
            pixelport.describe(self.url, 'no-such-image')
        self.assertEqual(caught.exception.code, 'PXP_ERR_NOT_FOUND')


class Registered(ServerTest):
    def setUp(self):
        self.store = pixelport.connect(self.url, transport='shm')
        self.addCleanup(self.store.close)

    def test_write_is_what_http_downloads(self):
        d = self.create(shape=[5, 7], typestr='<u2')
        img = self.store.open(d['id'])
        self.addCleanup(img.close)
        self.assertEqual(img.dtype, np.dtype('<u2'))
        with img.write() as a:
            a[...] = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
        self.assertEqual(img.last_generation, 1)
        generation, body = self.download(d['id'])
        self.assertEqual(generation, 1)
        np.testing.assert_array_equal(np.frombuffer(body, '<u2').reshape(5, 7), np.arange(35).reshape(5, 7) * 1000)
        copy, g = img.read()
        self.assertEqual(g, 1)
        np.testing.assert_array_equal(copy, img.array)

    def test_a_failed_block_still_commits_and_unlocks(self):
        d = self.create(width=4, height=4, mode='L')
        img = self.store.open(d['id'])
        self.addCleanup(img.close)
        with self.assertRaises(RuntimeError):
            with img.write() as a:
                a[0, 0] = 9
                raise RuntimeError('boom')
        self.assertEqual(img.generation, 1)
        self.assertEqual(self.put(d['id'], bytes(16)), 2, 'the lock was released: the server can write')

    def test_frame_buffered_loan_and_publish(self):
        d = self.store.create(id='py-frames-' + secrets.token_hex(3), width=6, height=2, mode='L', frames=3)
        img = self.store.open(d['id'])
        self.addCleanup(img.close)
        self.assertEqual(img.frames, 3)
        for value in (5, 6, 7):
            with img.write() as a:
                a[:, :3] = value
        copy, generation = img.read()
        self.assertEqual(generation, 3)
        np.testing.assert_array_equal(copy[:, :3], 7)
        np.testing.assert_array_equal(copy[:, 3:], 0)
        _, body = self.download(d['id'])
        self.assertEqual(bytes(body), copy.tobytes())
        with self.assertRaises(KeyError):
            with img.write() as a:
                a[...] = 99
                raise KeyError('cancelled')
        self.assertEqual(img.generation, 3, 'a cancelled loan publishes nothing')

    def test_line_based_images(self):
        d = self.create(width=5, height=3, mode='RGB', layout='lines')
        img = self.store.open(d['id'])
        self.addCleanup(img.close)
        live = img.array                      # a contiguous copy, read-only: writes would not reach the image
        self.assertFalse(live.flags.writeable)
        with img.write() as a:
            a[...] = np.arange(45, dtype=np.uint8).reshape(3, 5, 3)
        copy, generation = img.read()
        self.assertEqual(generation, 1)
        np.testing.assert_array_equal(copy.reshape(-1), np.arange(45))
        self.assertEqual(self.download(d['id'])[1], bytes(range(45)))

    def test_errors(self):
        ro = self.create(width=2, height=2, mode='L', readonly=True)
        img = self.store.open(ro['id'])
        with self.assertRaises(pixelport.PixelportError) as caught:
            with img.write():
                pass
        self.assertEqual(caught.exception.code, 'PXP_ERR_READONLY')
        img.close()
        with self.assertRaises(pixelport.PixelportError) as caught:
            img.read()
        self.assertEqual(caught.exception.code, 'PXP_ERR_NOT_LEASED')
        with self.assertRaises(pixelport.PixelportError) as caught:
            self.store.open('missing')
        self.assertEqual(caught.exception.code, 'PXP_ERR_NOT_FOUND')
        with self.assertRaises(pixelport.PixelportError) as caught:
            self.store._attach.request('begin', slot=123456)
        self.assertEqual(caught.exception.code, 'PXP_ERR_VALIDATION')

    def test_deleted_while_open_keeps_its_memory_until_close(self):
        d = self.create(width=4, height=4, mode='L')
        self.put(d['id'], bytes([3] * 16))
        img = self.store.open(d['id'])
        http('DELETE', self.url + '/images/' + d['id'])
        np.testing.assert_array_equal(img.array, 3)
        with self.assertRaises(pixelport.PixelportError) as caught:
            img.wait_for_change(img.generation, timeout=5)
        self.assertEqual(caught.exception.code, 'PXP_ERR_NOT_FOUND')
        img.close()

