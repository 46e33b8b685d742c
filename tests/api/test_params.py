"""Parameters as real clients send them: malformed ones refused (400), unknown ones ignored,
over-large limits clamped, arrays as repeated keys, wrong HTTP methods and unknown methods."""

from __future__ import annotations

import pytest

from api.params import ParamSpec
from engine.lexicon import load_default
from tests import factories as f

from .conftest import Client, Seed, get_json
from .world import new_post

POST = f.uri(f.did("c"), f.POST, "3mmwu7vak2322")

# (method, query string) pairs that must be refused with 400 InvalidRequest.
MALFORMED = [
    ("social.coves.feed.getDiscover", "limit=abc"),
    ("social.coves.feed.getDiscover", "limit=-1"),
    ("social.coves.feed.getDiscover", "limit=0"),
    ("social.coves.feed.getDiscover", "limit=1.5"),
    ("social.coves.feed.getDiscover", "limit="),  # empty: absent, default — see below
    ("social.coves.feed.getDiscover", "sort=rising"),
    ("social.coves.feed.getDiscover", "timeframe=decade"),
    ("social.coves.feed.getCommunity", ""),
    ("social.coves.feed.getCommunity", "community=not%20a%20handle"),
    ("social.coves.feed.getCommunity", "community=!@"),
    ("social.coves.community.get", "community=http://x"),
    ("social.coves.community.list", "sort=biggest"),
    ("social.coves.community.list", "subscribed=maybe"),
    ("social.coves.community.list", "visibility=secret"),
    ("social.coves.community.search", ""),
    ("social.coves.community.comment.getComments", "post=not-a-uri"),
    ("social.coves.community.comment.getComments", f"post={POST}&depth=-2"),
    ("social.coves.community.comment.getComments", f"post={POST}&depth=x"),
    ("social.coves.community.comment.getComments", f"post={POST}&sort=old"),
    ("social.coves.community.post.get", ""),
    ("social.coves.community.post.get", "uris=nope"),
    ("social.coves.community.post.get", f"uris={POST}&uris=nope"),
    ("social.coves.community.post.search", "q=x&sort=hot"),
    ("social.coves.community.post.search", "q=x&author=bad%20actor"),
    ("social.coves.actor.getProfile", "actor=no"),
    ("social.coves.actor.getPosts", "actor=did:plc:x&filter=everything"),
    ("social.coves.aggregator.getServices", "dids=notadid"),
    ("social.coves.aggregator.getAuthorizations", "aggregatorDid=x"),
    ("social.coves.aggregator.getAuthorizations", "aggregatorDid=did:plc:abc&enabledOnly=yes"),
    ("social.coves.feed.getDiscover", "cursor=" + "x" * 2000),
    ("social.coves.feed.getDiscover", "cursor=abc.def"),
    ("social.coves.community.search", "q=a%00b"),
    ("social.coves.community.post.search", "q=%00"),
    ("social.coves.community.post.search", "q=x&tags=a%00"),
]


@pytest.mark.parametrize(("method", "query"), [m for m in MALFORMED if m[1] != "limit="])
async def test_malformed_parameters_are_400(client: Client, method: str, query: str) -> None:
    status, body = await get_json(client, f"/xrpc/{method}?{query}")
    assert status == 400, body
    assert body["error"] in ("InvalidRequest", "InvalidCursor") and body["message"]


async def test_empty_value_counts_as_absent(client: Client) -> None:
    status, _body = await get_json(client, "/xrpc/social.coves.feed.getDiscover?limit=&cursor=")
    assert status == 200


async def test_unknown_parameters_are_ignored(client: Client, seed: Seed) -> None:
    community = f.did("c")
    uri, frame = new_post(community)
    await seed([f.profile(community, name="c"), frame])
    status, body = await get_json(client, "/xrpc/social.coves.feed.getDiscover?refresh=1&_=123&x=%ZZ")
    assert status == 200 and body["feed"][0]["post"]["uri"] == uri


async def test_limits_are_clamped_to_the_lexicon_maximum(client: Client) -> None:
    spec = ParamSpec.from_lexicon(load_default().def_for("social.coves.community.list"))
    assert spec.parse(_Query(limit=["500"]))["limit"] == 100
    assert spec.parse(_Query(limit=["99999999999999999999"]))["limit"] == 100
    assert spec.parse(_Query())["limit"] == 50
    status, _body = await get_json(client, "/xrpc/social.coves.community.list?limit=500")
    assert status == 200


def test_arrays_come_from_repeated_keys() -> None:
    spec = ParamSpec.from_lexicon(load_default().def_for("social.coves.community.post.get"))
    assert spec.parse(_Query(uris=[POST, POST]))["uris"] == [POST, POST]


class _Query:
    def __init__(self, **values: list[str]) -> None:
        self.values = values

    def getlist(self, key: str) -> list[str]:
        return self.values.get(key, [])


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_wrong_http_method_is_405(client: Client, method: str) -> None:
    response = await client.open("/xrpc/social.coves.feed.getDiscover", method=method)
    body = await response.get_json()
    assert (response.status_code, body["error"]) == (405, "MethodNotAllowed")
    assert response.headers["Allow"] == "GET, HEAD"


async def test_unknown_method_is_404_method_not_implemented(client: Client) -> None:
    status, body = await get_json(client, "/xrpc/social.coves.nothing.here")
    assert (status, body["error"]) == (404, "MethodNotImplemented")


async def test_unknown_path_gets_the_error_envelope(client: Client) -> None:
    status, body = await get_json(client, "/nowhere")
    assert (status, body["error"]) == (404, "NotFound")


async def test_head_is_served_like_get(client: Client) -> None:
    response = await client.head("/xrpc/social.coves.feed.getDiscover")
    assert response.status_code == 200
