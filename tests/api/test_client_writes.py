"""Client-written records: the AppView answers 400 WriteToYourPDS naming the collection."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from api.client_writes import CLIENT_WRITES
from tests import factories as f

from .keys import KeyResolver


@pytest.mark.parametrize("nsid", sorted(CLIENT_WRITES))
async def test_client_written_procedures_say_where_to_write(client: Client, nsid: str) -> None:
    response = await client.post(f"/xrpc/{nsid}", json={"community": "did:plc:x"})
    body = await response.get_json()
    assert response.status_code == 400 and body["error"] == "WriteToYourPDS"
    collection = CLIENT_WRITES[nsid][0]
    assert collection in body["message"] and "your own PDS" in body["message"]
    wrong = await client.get(f"/xrpc/{nsid}")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"


async def test_procedures_check_the_caller_then_the_body(client: Client,
                                                          resolver: KeyResolver) -> None:
    nsid = "social.coves.community.post.create"
    path, json_type = f"/xrpc/{nsid}", {"Content-Type": "application/json"}
    # no token, no other answer (whatever the body)
    assert (await client.post(path, data=b"not json", headers=json_type)).status_code == 401
    def auth() -> dict[str, str]:  # a fresh token per call: write tokens are single-use
        return {**json_type, **resolver.bearer(f.did("u"), nsid)}

    cases = [(b"{" + b" " * (300 * 1024) + b"}", auth(), 413, "PayloadTooLarge"),
             (b"not json", auth(), 400, "InvalidRequest"),
             (b"[1]", auth(), 400, "InvalidRequest"),
             (b'{"title": "no community"}', auth(), 400, "InvalidRequest"),
             (b'{"community": "did:plc:x"}', {**auth(), "Content-Type": "text/plain"}, 400,
              "InvalidRequest")]
    for data, headers, status, error in cases:
        response = await client.post(path, data=data, headers=headers)
        body = await response.get_json()
        assert (response.status_code, body["error"]) == (status, error), body
    # without a write path (this app has none) a valid call answers MethodNotImplemented
    response = await client.post(path, data=b'{"community": "did:plc:x"}', headers=auth())
    assert response.status_code == 404
