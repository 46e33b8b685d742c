"""The server stack's own ceiling: Hypercorn's Trio worker + Quart-Trio with one JSON route, set
up as api/server.py sets up the real API (no access log, same keep-alive). bench/api_load.py
loads it with the same generator as the real endpoints, in the same run.

    python -m bench._hello --port PORT    # prints READY when listening
"""

from __future__ import annotations

import argparse
import logging

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

from api.server import KEEP_ALIVE_S

__all__ = ["create_app", "main"]


def create_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.get("/xrpc/bench.hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


async def _serve(port: int) -> None:
    config = HyperConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = KEEP_ALIVE_S
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(create_app(), config, task_status=task_status))
        print("READY", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._hello")
    parser.add_argument("--port", type=int, required=True)
    trio.run(_serve, parser.parse_args().port)


if __name__ == "__main__":
    main()
