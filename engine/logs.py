"""Logging set-up: stdlib loggers rendered by structlog — JSON in production, readable otherwise.

Modules log with `logging.getLogger(__name__)` and pass fields as `extra={...}`; they become
key-value pairs in the output. Every line passes `redact`, which removes secrets wherever they
hide: fields named like passwords, tokens, authorization headers or e-mail addresses, and any
JWT, e-mail address, or URL password found inside a value or the message itself.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

__all__ = ["REDACTED", "REQUEST_ID", "configure_logging", "redact", "redact_text"]

REDACTED: Final = "[redacted]"
# The id of the API request being served (set by api/edge.py); log lines written meanwhile carry it.
REQUEST_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar("request_id", default=None)
_SECRET_KEYS: Final = re.compile(
    r"pass(word|wd)?|secret|token|jwt|authorization|cookie|api[_-]?key|email|credential", re.I)
# JWTs (three base64url parts, the first an encoded JSON header), e-mail addresses, and the
# password in scheme://user:password@host URLs.
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL_PASSWORD: Final = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.I)


def redact_text(text: str) -> str:
    """Remove JWTs, e-mail addresses and URL passwords from free text."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", text)
    text = _JWT.sub(REDACTED, text)
    return _EMAIL.sub(REDACTED, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    return value


def add_request_id(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the id of the API request being served, if any."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: scrub secrets from every field of a log line."""
    for key, value in list(event.items()):
        if key in ("level", "logger", "timestamp"):
            continue
        event[key] = REDACTED if _SECRET_KEYS.search(key) else _scrub(value)
    return event


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
            add_request_id,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
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
