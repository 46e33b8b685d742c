"""The OpenAPI document: generated from the lexicons, committed up to date, and fuzzed against a
real server (schemathesis): no input may produce a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, settings

from api.openapi import COMMITTED, build_openapi, render_openapi
from api.app import build_router
from engine.lexicon import load_default
from tests import factories as f
from tests.conftest import TEMPLATE_DB, _admin, with_database

from .conftest import api_config
from .live import LiveServer
from .world import new_comment, new_post, vote_frames

DOCUMENT = build_openapi(build_router(api_config()), load_default())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
EXAMPLES_PER_OPERATION = 25  # 21 operations: ~30 s here


def test_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == render_openapi(DOCUMENT), \
        "api/openapi.json is stale: run `coves openapi --out api/openapi.json`"


def test_every_served_method_and_alias_is_documented() -> None:
    paths = set(DOCUMENT["paths"])
    assert {"/xrpc/social.coves.actor.getprofile", "/xrpc/social.coves.communityFeed.getCommunity",
            "/xrpc/social.coves.feed.getTimeline"} <= paths
    timeline = DOCUMENT["paths"]["/xrpc/social.coves.feed.getTimeline"]["get"]
    assert timeline["security"] == [{"serviceAuth": []}]
    limit = next(p for p in timeline["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["default"] == 15


def _world() -> list[bytes]:
    community = f.did("fuzz")
    post, post_frame = new_post(community)
    comment, comment_frame = new_comment(f.did("u"), post)
    return [f.profile(community, name="fuzz", handle="c-fuzz.coves.test"), post_frame,
            comment_frame, new_comment(f.did("v"), post, parent=comment)[1],
            *vote_frames(post, 3), f.subscription(f.did("u"), f.tid(), community)]


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_url: str) -> Iterator[LiveServer]:
    name = f"coves_test_live_{os.getpid()}"
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
             f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        with LiveServer(with_database(pg_admin_url, name), _world(),
                        RATE_LIMIT_PER_MINUTE="1000000",
                        RATE_LIMIT_COMMENTS_PER_MINUTE="1000000") as server:
            yield server
    finally:
        trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case, live: LiveServer) -> None:
    response = case.call(base_url=live.url)
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance])


def test_real_server_serves_aliases_and_refuses_other_methods(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        feed = http.get("/xrpc/social.coves.communityFeed.getCommunity",
                        params={"community": "!fuzz@coves.test"})
        assert feed.status_code == 200 and len(feed.json()["feed"]) == 1
        profile = http.get("/xrpc/social.coves.actor.getprofile", params={"actor": f.did("u")})
        assert profile.status_code == 200
        wrong = http.post("/xrpc/social.coves.feed.getDiscover")
        assert (wrong.status_code, wrong.json()["error"]) == (405, "MethodNotAllowed")
        assert http.get("/xrpc/_health").json()["status"] == "ok"


def test_procedures_are_documented_as_posts_with_their_input() -> None:
    create = DOCUMENT["paths"]["/xrpc/social.coves.community.post.create"]
    assert set(create) == {"post"}
    operation = create["post"]
    assert operation["security"] == [{"serviceAuth": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "community" in body["required"] and "title" in body["properties"]
    assert {"400", "401", "403", "409", "413", "502", "503"} <= set(operation["responses"])
    upload = DOCUMENT["paths"]["/xrpc/social.coves.blob.uploadBlob"]["post"]
    assert set(upload["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    assert [p["name"] for p in upload["parameters"]] == ["community"]
    vote = DOCUMENT["paths"]["/xrpc/social.coves.feed.vote.create"]["post"]
    assert "security" not in vote  # answered WriteToYourPDS to anyone
