"""Failures are PixelportError with the server's code: a server killed mid-session, nothing listening, tokens."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import pixelport
from _server import Server

TRANSPORTS = ['shm', 'http', 'ws']


def closed_code(fn, *args, **kw) -> str:
    """Run ``fn``; it must raise PixelportError (never a raw socket error): its code."""
    with pytest.raises(pixelport.PixelportError) as caught:
        fn(*args, **kw)
    return caught.value.code


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_a_server_killed_mid_session_gives_closed(transport):
    server = Server()
    try:
        store = pixelport.connect(server.url, transport=transport)
        store.put('k/img', np.zeros((4, 4), np.uint8))
        img = store.open('k/img')
        generation = img.generation
        sub = store.subscribe(['k/img'], policy='all')
        server.kill()                                       # SIGKILL: no goodbye on any socket
        assert closed_code(sub.next, 10) == 'PXP_ERR_CLOSED'
        assert closed_code(store.list) == 'PXP_ERR_CLOSED'
        assert closed_code(store.list) == 'PXP_ERR_CLOSED', 'and again: no BrokenPipeError on a second try'
        assert closed_code(store.get, 'k/img') == 'PXP_ERR_CLOSED'
        assert closed_code(store.put, 'k/img', np.ones((4, 4), np.uint8)) == 'PXP_ERR_CLOSED'
        assert closed_code(store.describe, 'k/img') == 'PXP_ERR_CLOSED'
        assert closed_code(store.subscribe) == 'PXP_ERR_CLOSED'

        def write() -> None:
            with img.write() as a:
                a[...] = 1
        assert closed_code(write) == 'PXP_ERR_CLOSED'
        if transport == 'shm':
            # The futex wait notices the registration's socket closing.
            assert closed_code(img.wait_for_change, generation, timeout=10) == 'PXP_ERR_CLOSED'
        else:
            assert closed_code(img.wait_for_change, generation, timeout=10) == 'PXP_ERR_CLOSED'
        img.close()
        store.close()
        store.close()                                       # idempotent
        assert closed_code(store.list) == 'PXP_ERR_CLOSED'
    finally:
        server.kill()


@pytest.mark.parametrize('transport', [None] + TRANSPORTS)
def test_nothing_listening_gives_closed(transport):
    with socket.socket() as s:                              # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    assert closed_code(pixelport.connect, 'http://127.0.0.1:%d' % port, transport=transport) == 'PXP_ERR_CLOSED'


def test_bad_arguments(server):
    assert closed_code(pixelport.connect, server.url, transport='carrier-pigeon') == 'PXP_ERR_VALIDATION'
    assert closed_code(pixelport.connect, 'ftp://example') == 'PXP_ERR_VALIDATION'


def test_shm_forced_on_a_server_without_it():
    server = Server(shm=False)
    try:
        assert closed_code(pixelport.connect, server.url, transport='shm') == 'PXP_ERR_SHM'
        with pixelport.connect(server.url) as store:
            assert store.transport == 'http' and 'shared memory' in store.shm_reason
    finally:
        server.stop()


@pytest.fixture(scope='module')
def token_server():
    s = Server('--token', 'root-secret-0123456789:admin', '--token', 'viewer-secret-0123456789:read', '--token', 'cam-secret-0123456789:read,write:cam/*')
    yield s
    s.stop()


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_tokens(token_server, transport):
    url = token_server.url
    with pixelport.connect(url, token='root-secret-0123456789', transport=transport) as admin:
        admin.put('cam/a', np.arange(6, dtype=np.uint8).reshape(2, 3))
        admin.put('other/b', np.zeros(3, np.uint8))
        assert admin.get('cam/a')[1, 2] == 5
        with admin.subscribe(['cam/a'], policy='all') as sub:
            admin.put('cam/a', np.ones((2, 3), np.uint8))
            assert sub.next(10).type == 'updated'

    # No token, a wrong token: refused.
    if transport == 'http':
        with pixelport.connect(url, transport='http') as anonymous:
            assert closed_code(anonymous.list) == 'PXP_ERR_UNAUTHORIZED'
        with pixelport.connect(url, token='wrong-0123456789abcdef', transport='http') as wrong:
            assert closed_code(wrong.get, 'cam/a') == 'PXP_ERR_UNAUTHORIZED'
    else:
        assert closed_code(pixelport.connect, url, transport=transport) == 'PXP_ERR_UNAUTHORIZED'
        assert closed_code(pixelport.connect, url, token='wrong-0123456789abcdef', transport=transport) == 'PXP_ERR_UNAUTHORIZED'

    if transport == 'shm':
        # Shared memory gives whoever maps it everything: only an admin token finds it (GET /shm).
        assert closed_code(pixelport.connect, url, token='viewer-secret-0123456789', transport='shm') == 'PXP_ERR_FORBIDDEN'
        with pixelport.connect(url, token='viewer-secret-0123456789') as viewer:
            assert viewer.transport == 'http' and viewer.shm_reason
        return

    with pixelport.connect(url, token='viewer-secret-0123456789', transport=transport) as viewer:
        assert viewer.get('cam/a').sum() == 6
        assert closed_code(viewer.put, 'cam/a', np.zeros((2, 3), np.uint8)) == 'PXP_ERR_FORBIDDEN'
        assert closed_code(viewer.delete, 'cam/a') == 'PXP_ERR_FORBIDDEN'
    with pixelport.connect(url, token='cam-secret-0123456789', transport=transport) as cam:
        cam.put('cam/c', np.zeros(2, np.uint8))
        assert closed_code(cam.put, 'other/c', np.zeros(2, np.uint8)) == 'PXP_ERR_FORBIDDEN'
        assert closed_code(cam.get, 'other/b') == 'PXP_ERR_FORBIDDEN'
        assert [d['id'] for d in cam.list() if not d['id'].startswith('cam/')] == []
        cam.delete('cam/c')


def test_an_upload_refused_early_gives_the_servers_code(server):
    # The server answers a PUT to a missing image at once and stops reading: the client must report the
    # refusal (404), not the broken pipe its remaining 8 MiB ran into.
    from pixelport.http import HttpClient, image_path
    client = HttpClient(server.url)
    for _ in range(5):
        with pytest.raises(pixelport.PixelportError) as caught:
            client.upload('PUT', image_path('no/such/upload') + '/data', memoryview(bytes(8 << 20)))
        assert caught.value.code == 'PXP_ERR_NOT_FOUND'
