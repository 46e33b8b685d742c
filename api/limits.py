"""Request size limits: a body over the app's MAX_CONTENT_LENGTH is 413, headers over
MAX_HEADER_BYTES are 431, both with the XRPC error envelope, before any method runs.

Two layers enforce them. Hypercorn's HTTP/1 parser refuses a header block it cannot complete
within H11_MAX_INCOMPLETE_BYTES (a bare 431 without a body: the app never sees that request);
below that, the API's edge answers with the envelope (api/edge.py). Quart stops buffering a body
past MAX_CONTENT_LENGTH by itself, but a method that never reads its body (every query) used to
answer 200 regardless; the hook refuses it up front from Content-Length, or — for a chunked
body — by reading at most the limit. A body within the limit is read before the method runs, so
no answer leaves part of a request unread on a kept-alive connection.
"""

from __future__ import annotations

from typing import Final

from quart import request

from .errors import PayloadTooLarge

__all__ = ["CLOSE", "H11_MAX_INCOMPLETE_BYTES", "MAX_HEADER_BYTES", "refuse_oversized_request"]

# A service-auth JWT is ~0.5-1 KiB and XRPC calls carry a handful of headers; nginx's default
# allows 8 KiB per line. 16 KiB in total is far above any real call.
MAX_HEADER_BYTES: Final = 16 * 1024
# Hypercorn's (h11's) own limit on an incomplete request head, default 16 KiB: raised so heads
# between MAX_HEADER_BYTES and this get the envelope; beyond it Hypercorn answers a bare 431.
H11_MAX_INCOMPLETE_BYTES: Final = 64 * 1024
# Refusals close the connection: Hypercorn stops reading a request once the app has answered, so
# the unread rest of an oversized body would sit in front of the next request on a kept-alive
# connection, which then hung until the keep-alive timeout (seen with httpx's pooled client).
CLOSE: Final = {"Connection": "close"}


async def refuse_oversized_request() -> None:
    """before_request hook: refuse oversized bodies (413).

    Raises:
        PayloadTooLarge: Content-Length above the limit.
        werkzeug's RequestEntityTooLarge: a chunked body that grows past it (rendered as 413).
    """
    limit = request.max_content_length
    if limit is None:
        return
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes", headers=CLOSE)
    if length or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # Read the whole (bounded) body before any answer: Hypercorn stops reading a request
        # once it is answered, and an unread body left the next request on the connection
        # hanging until the keep-alive timeout. A chunked body past the limit raises
        # RequestEntityTooLarge here (rendered as 413).
        await request.get_data(cache=True)
