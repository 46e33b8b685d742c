"""Request ids: every API request carries one — the client's `X-Request-Id` when it is sane,
else a fresh one — in every log line written while serving it and in the response header
(both done by api/edge.py)."""

from __future__ import annotations

import re
import secrets
from typing import Final

__all__ = ["HEADER", "request_id_for"]

HEADER: Final = "X-Request-Id"
# A client's id is kept only if it is short and plain: it ends up in logs and headers.
_ACCEPTED: Final = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def request_id_for(offered: bytes | None) -> str:
    """The client's id (the raw header value) when it is sane, else a fresh random one."""
    if offered is not None and _ACCEPTED.fullmatch(offered):
        return offered.decode("ascii")
    return secrets.token_hex(8)
