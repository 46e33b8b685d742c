"""Fixtures for identity tests: a private CA (trustme), a local HTTPS server, a fetcher that
trusts that CA and maps every host name to 127.0.0.1."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator

import pytest
import trio
import trustme

from engine.identity.fetch import Fetcher, IPAddress, open_fetcher

from .server import TestServer

# Every name the tests' certificate covers; the fetcher's test resolver sends them all to 127.0.0.1.
CERT_NAMES = ("localhost", "coves.test", "*.coves.test", "other.test", "*.other.test", "alice.test")


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*CERT_NAMES).configure_cert(context)
    return context


@pytest.fixture
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def https_server(nursery: trio.Nursery, server_ssl: ssl.SSLContext) -> TestServer:
    server = TestServer(server_ssl)
    await nursery.start(server.serve)
    return server


async def to_localhost(host: str, port: int) -> list[IPAddress]:
    """Test name lookup: every name is 127.0.0.1 (the TLS server's certificate covers CERT_NAMES)."""
    return [ipaddress.ip_address("127.0.0.1")]


@pytest.fixture
async def fetcher(client_ssl: ssl.SSLContext) -> AsyncIterator[Fetcher]:
    """A fetcher with the test-only allowance on (127.0.0.1 is private), trusting the test CA."""
    async with open_fetcher(allow_private=True, ssl_context=client_ssl, resolve=to_localhost,
                            timeout_s=2.0) as fetcher:
        yield fetcher
