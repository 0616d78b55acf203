"""Fixtures: a real server (shared memory on) for the session, and a store per transport."""

from __future__ import annotations

import secrets
from typing import Iterator

import pytest

import pixelport
from _server import Server

TRANSPORTS = ['shm', 'http', 'ws']


@pytest.fixture(scope='session')
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()
    assert s.segments() == [], 'segments left after SIGTERM'


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(server: Server, transport: str) -> Iterator[pixelport.Store]:
    s = pixelport.connect(server.url, transport=transport)
    assert s.transport == transport
    yield s
    s.close()


@pytest.fixture
def new_id(transport: str) -> str:
    return 'py/%s/%s' % (transport, secrets.token_hex(4))


@pytest.fixture(scope='class')
def unittest_server(request: pytest.FixtureRequest, server: Server) -> None:
    """The session's server for unittest-style classes (test_attach.py)."""
    request.cls.url = server.url
    request.cls.prefix = server.prefix
