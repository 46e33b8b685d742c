"""Opaque pagination cursors: a keyset position, signed so clients cannot forge or mix them.

A cursor is `base64url(JSON payload) "." base64url(HMAC-SHA256(secret, payload)[:16])`. The payload
names the listing it belongs to (`kind`, e.g. "feed:hot"), so a cursor of one listing or sort
is refused by another instead of silently paging the wrong order. What the position holds is
the caller's business (sort key, tiebreak, snapshot); the codec only signs and checks it.

Every API process must share CURSOR_SECRET: a cursor issued by one is read by another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any, Final

import orjson

from .errors import InvalidCursor

__all__ = ["CursorCodec", "MAX_CURSOR_CHARS"]

MAX_CURSOR_CHARS: Final = 1024  # a position is a few keys and a snapshot: ~200 characters
_MAC_BYTES: Final = 16  # 128-bit tag: forging one is out of reach, and cursors stay short
_VERSION: Final = 1


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and reads cursors with one HMAC key.

    Args:
        secret: CURSOR_SECRET; None draws a random key (cursors then die with the process).
    """

    def __init__(self, secret: str | None) -> None:
        self._key = secret.encode() if secret is not None else secrets.token_bytes(32)

    def encode(self, kind: str, position: dict[str, Any]) -> str:
        """A cursor for `position` in the listing `kind`."""
        body = orjson.dumps({"v": _VERSION, "k": kind, "p": position})
        return _b64encode(body) + "." + _b64encode(self._mac(body))

    def decode(self, kind: str, cursor: str) -> dict[str, Any]:
        """The position a cursor of listing `kind` holds.

        Raises:
            InvalidCursor: malformed, altered, signed with another key, or of another listing.
        """
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursor("Malformed cursor")
        body_text, mac_text = cursor.split(".")
        try:
            body, mac = _b64decode(body_text), _b64decode(mac_text)
        except (binascii.Error, ValueError):
            raise InvalidCursor("Malformed cursor") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidCursor("Cursor signature does not match")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidCursor("Malformed cursor") from None
        if (not isinstance(payload, dict) or payload.get("v") != _VERSION
                or not isinstance(payload.get("p"), dict)):
            raise InvalidCursor("Cursor from an incompatible version")
        if payload.get("k") != kind:
            raise InvalidCursor(f"Cursor belongs to another listing ({payload.get('k')}), not {kind}")
        position: dict[str, Any] = payload["p"]
        return position

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
