"""Serving the API: Hypercorn's Trio worker over `create_app`, as one task of a nursery.

`coves run` starts it next to the engine, `coves api` alone (engine/service.py). It stops
accepting connections when `shutdown_trigger` returns and lets requests in flight finish for up
to GRACEFUL_TIMEOUT_S.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from engine.config import SETTINGS, Config
from engine.db import Database
from engine.errors import ConfigError

from .app import create_app
from .auth import DidResolver
from .limits import H11_MAX_INCOMPLETE_BYTES
from .ratelimit import RateLimiter
from .writes import Writes

__all__ = ["GRACEFUL_TIMEOUT_S", "check_api_config", "serve_api"]

LOGGER = logging.getLogger(__name__)
GRACEFUL_TIMEOUT_S: Final = 10.0  # in-flight requests get this long after shutdown begins
KEEP_ALIVE_S: Final = 75  # longer than common load balancers' idle timeout (60 s)


def check_api_config(config: Config) -> None:
    """Refuse to serve the API in production without its identity and its cursor key.

    Checked when the API starts (`coves run`, `coves api`), not at every command: an engine-only
    process needs neither.

    Raises:
        ConfigError: naming each missing variable.
    """
    if not config.production:
        return
    problems = []
    if config.instance_did is None:
        problems.append("INSTANCE_DID is required in production to serve the API: tokens must "
                        "name this AppView's real DID in `aud`")
    if config.cursor_secret is None:
        problems.append("CURSOR_SECRET is required in production to serve the API: cursors must "
                        "survive restarts and work across API processes")
    for setting in SETTINGS:
        if setting.production == "api" and getattr(config, setting.field) in (None, ""):
            problems.append(f"{setting.env} is required in production to serve the API: "
                            f"{setting.help}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_api(config: Config, db: Database, resolver: DidResolver, *,
                    writes: Writes | None = None, limiter: RateLimiter | None = None,
                    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the XRPC API on API_HOST:API_PORT until `shutdown_trigger` returns or cancelled.

    `task_status.started(urls)` once listening (the bound URLs: API_PORT=0 picks a free port).
    """
    app = create_app(config, db, resolver, writes=writes, limiter=limiter)
    hyper = HyperConfig()
    hyper.bind = [_bind(config.api_host, config.api_port)]
    hyper.accesslog = None  # requests are counted in metrics, not logged one by one
    hyper.errorlog = logging.getLogger("hypercorn.error")  # through our log set-up, once
    hyper.graceful_timeout = GRACEFUL_TIMEOUT_S
    hyper.keep_alive_timeout = KEEP_ALIVE_S
    hyper.h11_max_incomplete_size = H11_MAX_INCOMPLETE_BYTES

    await serve(app, hyper, shutdown_trigger=shutdown_trigger, task_status=task_status)
