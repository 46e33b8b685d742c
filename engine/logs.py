"""Logging set-up: stdlib loggers rendered by structlog — JSON in production, readable otherwise.

Modules log with `logging.getLogger(__name__)` and pass fields as `extra={...}`; they become
key-value pairs in the output.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


def configure_logging(level: str = "info", fmt: str = "auto", *, production: bool = False) -> None:
    """Route every stdlib logger through one structlog formatter on stderr."""
    json_output = fmt == "json" or (fmt == "auto" and production)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_output else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that log per request or per connection at INFO.
    for noisy in ("hypercorn.access", "asyncio", "trio-websocket", "pgserver", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
