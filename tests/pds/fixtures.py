"""pytest fixtures that run the reference PDS; load with `pytest_plugins = ["tests.pds.fixtures"]`.

`pds_network` is one PLC + one PDS shared by the whole session (accounts accumulate: give
each test its own handles). `pds_network_factory(count=2)` starts a fresh network for one
test (e.g. two PDSes sharing a PLC, for federation) and stops it when the test ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from .harness import PdsClient, PdsNetwork, ensure_pds_installed, start_pds_network

__all__ = ["pds_client", "pds_installed", "pds_network", "pds_network_factory"]


@pytest.fixture(scope="session")
def pds_installed() -> None:
    """Install tests/pds/node_modules once per session (a no-op when it matches the lock)."""
    ensure_pds_installed()


@pytest.fixture(scope="session")
def pds_network(pds_installed: None) -> Iterator[PdsNetwork]:
    """One PLC and one PDS for the whole session."""
    with start_pds_network(count=1) as network:
        yield network


@pytest.fixture
def pds_network_factory(pds_installed: None) -> Iterator[Callable[..., PdsNetwork]]:
    """Start fresh networks (default: 2 PDSes on one PLC) that live until the test ends."""
    with contextlib.ExitStack() as stack:

        def start(count: int = 2) -> PdsNetwork:
            return stack.enter_context(start_pds_network(count=count))

        yield start


@pytest.fixture
async def pds_client(pds_network: PdsNetwork) -> AsyncIterator[PdsClient]:
    """A client for the session network's PDS, closed after the test."""
    async with PdsClient(pds_network.pds_urls[0]) as client:
        yield client
