"""/xrpc/_health, /.well-known/did.json, /metrics and /openapi.json."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY

from api.app import create_app
from api.multikey import encode_multikey
from engine.db import Database, open_database
from tests import factories as f
from tests.helpers import ingest

from .conftest import Client, MakeClient, api_config, get_json
from .keys import KeyResolver

HEALTH = "/xrpc/_health"


async def test_health_is_ok_without_any_ingestion(client: Client) -> None:
    status, body = await get_json(client, HEALTH)
    assert (status, body) == (200, {"status": "ok", "database": "ok", "ingest": None})


@pytest.mark.parametrize(("age_s", "status", "state"), [(5, 200, "ok"), (1000, 503, "lagging")])
async def test_health_follows_the_lag_of_the_live_source(client: Client, writer_db: Database,
                                                         age_s: int, status: int, state: str) -> None:
    time_us = int((time.time() - age_s) * 1_000_000)
    await ingest(writer_db, [f.identity(f.did("x"), time_us=time_us)], name="jetstream")
    got, body = await get_json(client, HEALTH)
    assert (got, body["status"]) == (status, state)
    assert body["ingest"]["source"] == "jetstream" and body["ingest"]["maxLagSeconds"] == 300
    assert age_s - 1 < body["ingest"]["lagSeconds"] < age_s + 30


async def test_replay_cursors_do_not_count_as_lag(client: Client, writer_db: Database) -> None:
    await ingest(writer_db, [f.identity(f.did("x"), time_us=1)], name="replay:old.jsonl")
    assert (await get_json(client, HEALTH))[0] == 200


@pytest.fixture
async def unreachable_db(bridge: None) -> AsyncIterator[Database]:
    # Nothing listens on port 9 of localhost; the pool connects lazily, so every query fails.
    async with open_database("postgresql://coves@127.0.0.1:9/none", min_size=0) as db:
        yield db


async def test_unreachable_database_is_503_everywhere(unreachable_db: Database) -> None:
    app = create_app(api_config(), unreachable_db, KeyResolver())
    async with app.test_app() as test_app:
        client = test_app.test_client()
        status, body = await get_json(client, HEALTH)
        assert (status, body["status"], body["database"]) == (503, "unavailable", "unreachable")
        status, body = await get_json(client, "/xrpc/social.coves.feed.getDiscover")
        assert (status, body["error"]) == (503, "ServiceUnavailable")


async def test_did_document_names_our_services_and_key(make_client: MakeClient) -> None:
    key = encode_multikey(ec.generate_private_key(ec.SECP256K1()).public_key())
    async with make_client(INSTANCE_DID="did:web:coves.example", INSTANCE_DOMAIN="coves.example",
                           PDS_URL="https://pds.coves.example",
                           INSTANCE_PUBLIC_KEY_MULTIBASE=key) as client:
        status, doc = await get_json(client, "/.well-known/did.json")
    assert status == 200 and doc["id"] == "did:web:coves.example"
    assert doc["verificationMethod"] == [{"id": "did:web:coves.example#atproto", "type": "Multikey",
                                          "controller": "did:web:coves.example",
                                          "publicKeyMultibase": key}]
    services = {s["id"]: s for s in doc["service"]}
    assert services["#atproto_pds"]["serviceEndpoint"] == "https://pds.coves.example"
    assert services["#coves_appview"]["serviceEndpoint"] == "https://coves.example"


async def test_no_did_document_for_a_plc_instance(make_client: MakeClient) -> None:
    async with make_client(INSTANCE_DID="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") as client:
        status, body = await get_json(client, "/.well-known/did.json")
    assert (status, body["error"]) == (404, "NotFound")


def _count(route: str, status: str) -> float:
    return REGISTRY.get_sample_value("coves_api_requests_total",
                                     {"route": route, "method": "GET", "status": status}) or 0.0


async def test_metrics_label_routes_by_template_never_by_path(client: Client) -> None:
    before = (_count("social.coves.community.get", "404"), _count("unknown", "404"),
              _count("unmatched", "404"))
    await client.get("/xrpc/social.coves.community.get?community=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
    await client.get("/xrpc/made.up.method1")
    await client.get("/xrpc/made.up.method2")
    await client.get("/random/path/123")
    after = (_count("social.coves.community.get", "404"), _count("unknown", "404"),
             _count("unmatched", "404"))
    assert [a - b for a, b in zip(after, before)] == [1, 2, 1]
    response = await client.get("/metrics")
    text = (await response.get_data()).decode()
    assert ('coves_api_request_duration_seconds_count{method="GET",'
            'route="social.coves.community.get",status="404"}') in text
    assert "made.up.method1" not in text and "/random/path/123" not in text


async def test_openapi_document_is_served(client: Client) -> None:
    status, doc = await get_json(client, "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/xrpc/social.coves.feed.getTimeline" in doc["paths"]
