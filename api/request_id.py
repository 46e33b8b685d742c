"""Request ids: every API request carries one — the client's `X-Request-Id` when it is sane,
else a fresh one — in every log line written while serving it and in the response header."""

from __future__ import annotations

import re
import secrets
from typing import Final

from quart import Response, g, request

from engine.logs import REQUEST_ID

__all__ = ["HEADER", "assign_request_id", "echo_request_id"]

HEADER: Final = "X-Request-Id"
# A client's id is kept only if it is short and plain: it ends up in logs and headers.
_ACCEPTED: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def assign_request_id() -> None:
    """before_request hook: adopt or make the id; log lines of this request carry it.

    Async on purpose: Quart runs a sync hook in a worker thread, where the context variable
    would be set for that thread only.
    """
    offered = request.headers.get(HEADER, "")
    request_id = offered if _ACCEPTED.match(offered) else secrets.token_hex(8)
    g.request_id = request_id
    REQUEST_ID.set(request_id)


def echo_request_id(response: Response) -> Response:
    """after_request hook: return the id to the client."""
    request_id = g.get("request_id")
    if request_id is not None:
        response.headers[HEADER] = request_id
    return response
