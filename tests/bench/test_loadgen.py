"""The load generator against the real hello-world server stack: a server that closes a
keep-alive connection (Hypercorn does after 1000 requests, and says `Connection: close`) must not
show up as failed requests — that cut the hello-world ceiling short in a suite run."""

from __future__ import annotations

import asyncio

from bench._loadgen import Request, run_rate
from bench.api_load import hello_server


def test_connections_the_server_closes_are_not_counted_as_errors() -> None:
    server = hello_server()
    try:
        # 1,500 requests, spaced so that each is answered before the next: one connection
        # carries them all, past Hypercorn's 1,000.
        tally = asyncio.run(run_rate("127.0.0.1", server.port,
                                     [Request("hello", "/xrpc/bench.hello")], 300, 5))
    finally:
        server.close()
    assert dict(tally.errors) == {}
    assert dict(tally.statuses) == {"200": 1500}
