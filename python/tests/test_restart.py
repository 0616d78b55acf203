"""An attached Python process rides through a restart of its server (``serve --recover``): its mapped images
stay readable and writable, it attaches again by itself, its leases are taken again, and a wait in progress
keeps waiting; calls made while the server is down fail with PXP_ERR_CLOSED and can be retried."""

from __future__ import annotations

import re
import threading
import urllib.request
from typing import Any, Dict, List

import numpy as np
import pytest

import pixelport
from _server import Server, wait_until


def closed_code(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(pixelport.PixelportError) as caught:
        fn(*args, **kwargs)
    return caught.value.code


def leases(url: str) -> int:
    text = urllib.request.urlopen(url + '/metrics', timeout=10).read().decode()
    return int(re.search(r'^pixelport_leases (\d+)', text, re.M).group(1))  # type: ignore[union-attr]


def test_an_attached_process_rides_through_a_crash_and_recover() -> None:
    first = Server()
    second = None
    try:
        store = pixelport.connect(first.url, transport='shm')
        store.put('ride/img', np.arange(16, dtype=np.uint8).reshape(4, 4))
        store.create('ride/frames', width=4, height=4, mode='L', frames=2)
        img = store.open('ride/img')
        frames = store.open('ride/frames')
        with frames.loan() as a:
            a[...] = 7
        start = img.generation

        # A wait that begins before the crash and must end after the restart, on a write made then.
        woke: Dict[str, Any] = {}

        def wait() -> None:
            try:
                woke['generation'] = img.wait_for_change(start, timeout=60)
            except BaseException as err:  # noqa: BLE001 - reported by the assertion below
                woke['error'] = err
        waiter = threading.Thread(target=wait)
        waiter.start()

        # A write in progress when the server dies: its lock dies with the server.
        writing = img.write()
        view = writing.__enter__()
        view[0, 0] = 99

        first.kill(keep_segments=True)
        assert closed_code(writing.__exit__, None, None, None) == 'PXP_ERR_CLOSED', 'the commit cannot reach the server'
        assert closed_code(store.list) == 'PXP_ERR_CLOSED', 'calls while the server is down fail, retryably'
        assert closed_code(store.list) == 'PXP_ERR_CLOSED', 'and again'
        assert img.array[0, 0] == 99, 'the mapping stays readable while the server is down'
        assert 'generation' not in woke and 'error' not in woke, 'the wait goes on while the server is down: %r' % woke

        second = Server('--recover', prefix=first.prefix)
        assert sorted(d['id'] for d in store.list()) == ['ride/frames', 'ride/img'], 'attached again by itself'
        assert store._attach.reconnects == 1  # type: ignore[union-attr]
        assert leases(second.url) == 2, 'both open images took their leases again on the new server'
        recovered = img.generation
        assert recovered == start + 1, 'the interrupted write was closed as one new generation by the adopting server'

        with img.write() as a:                           # the same handle writes again
            a[...] = 5
        assert img.generation == recovered + 1
        waiter.join(10)
        assert woke.get('generation', -1) > start, 'the wait that began before the crash woke after it: %r' % woke
        for k in range(3):                               # and the frame publisher goes on
            with frames.loan() as a:
                a[...] = k
        assert store.get('ride/frames')[0, 0] == 2
        assert store.get('ride/img').sum() == 5 * 16

        img.close()
        assert leases(second.url) == 1, 'close gives the re-taken lease back to the new server'
        frames.close()
        store.close()
        second.stop()
        assert second.segments() == [], 'nothing leaks after the final clean stop'
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_a_lost_store_and_reconnect_false() -> None:
    first = Server()
    second = None
    try:
        rides = pixelport.connect(first.url, transport='shm')
        stays = pixelport.connect(first.url, transport='shm', reconnect=False)
        rides.put('lost/img', np.zeros((2, 2), np.uint8))
        img = rides.open('lost/img')
        first.kill(keep_segments=True)
        second = Server('--recover', prefix=first.prefix)
        assert closed_code(stays.list) == 'PXP_ERR_CLOSED', 'reconnect=False: the first failure is final'
        assert [d['id'] for d in rides.list()] == ['lost/img']
        second.kill(keep_segments=True)
        # A server started without --recover removes the dead store's segments: that store is gone for good.
        third = Server(prefix=first.prefix)
        try:
            code = closed_code(rides.list)
            assert code == 'PXP_ERR_CLOSED'
            assert closed_code(img.wait_for_change, img.generation, timeout=5) == 'PXP_ERR_CLOSED', 'a wait on a removed store ends'
        finally:
            third.stop()
        rides.close()
        stays.close()
    finally:
        first.kill()
        if second is not None:
            second.kill()
