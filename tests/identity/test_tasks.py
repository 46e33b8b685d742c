"""The identity tasks against real Postgres and local servers: one round of the handle resolver
and of the host verifier, rows seeded through the engine; the loops survive database outages."""

from __future__ import annotations

import datetime
import hashlib
import time
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY

from engine.db import Database
from engine.decode import decode_jetstream
from engine.errors import DatabaseUnavailable
from engine.identity.communities import verify_due_communities
from engine.identity.fetch import Fetcher
from engine.identity.handles import HandleVerifier
from engine.identity.hosting import HostVerifier
from engine.identity.identities import RETRY_BASE_S, RETRY_CAP_S, resolve_due_identities, retry_delay_s
from engine.identity.resolver import DidResolver
from engine.identity.tasks import run_handle_resolver, run_host_verifier
from engine.records import DEFAULT_REGISTRY
from tests import factories as f
from tests.helpers import ingest, table

from .server import Reply, Seen, TestServer, json_reply

ALICE, BOB, CAROL, MALLORY = f.did("alice"), f.did("bob"), f.did("carol"), f.did("mallory")
C_GOOD, C_BAD, C_THREE = f.did("cgood"), f.did("cbad"), f.did("cthree")


def plc_doc(did: str, handle: str | None) -> dict[str, Any]:
    return {"id": did, "alsoKnownAs": [f"at://{handle}"] if handle else [],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": "https://pds.coves.test"}]}


class Network:
    """PLC documents and handle files served by one local TLS server."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.owners: dict[str, str] = {}  # handle → the DID its well-known file names
        server.routes["/.well-known/atproto-did"] = self._well_known

    def _well_known(self, seen: Seen) -> Reply:
        did = self.owners.get(seen.host.split(":")[0])
        return Reply(body=did.encode()) if did else Reply(status=404)

    def publish(self, did: str, handle: str | None, *, owner: str | None = None) -> None:
        self.server.routes[f"/{did}"] = json_reply(plc_doc(did, handle))
        if handle:
            self.owners[handle.lower()] = owner or did


@pytest.fixture
async def network(https_server: TestServer) -> Network:
    return Network(https_server)


@pytest.fixture
async def resolver(fetcher: Fetcher, https_server: TestServer) -> DidResolver:
    return DidResolver(fetcher, plc_url=f"https://plc.coves.test:{https_server.port}")


@pytest.fixture
async def handles(fetcher: Fetcher, https_server: TestServer) -> HandleVerifier:
    return HandleVerifier(fetcher, dns_resolver=None, https_port=https_server.port)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def identity(db: Database, did: str) -> dict[str, Any]:
    return (await table(db, "SELECT *, resolve_after - resolved_at AS retry_in FROM identities "
                            "WHERE did = $1", did))[0]


async def test_handle_resolver_writes_verified_handles_errors_and_retry_times(
        db: Database, writer_db: Database, network: Network, resolver: DidResolver,
        handles: HandleVerifier) -> None:
    await ingest(writer_db, [f.profile(C_GOOD, createdBy=ALICE), f.profile(C_BAD, createdBy=BOB),
                             f.profile(C_THREE, createdBy=CAROL)])
    network.publish(ALICE, "Alice.Coves.Test")
    network.publish(BOB, "bob.coves.test", owner=MALLORY)  # bob's handle names someone else
    # CAROL and the communities are unknown to the PLC (404)
    invalid_before = sample("coves_identity_resolutions_total", outcome="handle_invalid")
    before_us = time.time_ns() // 1000

    assert await resolve_due_identities(db, resolver, handles) == 6
    alice = await identity(db, ALICE)
    assert alice["handle"] == "alice.coves.test" and alice["pds_endpoint"] == "https://pds.coves.test"
    assert alice["resolve_after"] is None and alice["resolve_error"] is None
    assert before_us <= alice["handle_time_us"] <= time.time_ns() // 1000
    bob = await identity(db, BOB)
    assert bob["handle"] is None and "belongs to " + MALLORY in bob["resolve_error"]
    assert bob["retry_in"] == datetime.timedelta(seconds=RETRY_BASE_S)
    carol = await identity(db, CAROL)
    assert carol["handle"] is None and "not found" in carol["resolve_error"]
    assert carol["retry_in"] == datetime.timedelta(seconds=RETRY_BASE_S)
    assert sample("coves_identity_resolutions_total", outcome="handle_invalid") == invalid_before + 1

    assert await resolve_due_identities(db, resolver, handles) == 0  # nothing is due any more
    # Five minutes later CAROL is due, fails again, and the delay doubles.
    await db.execute("UPDATE identities SET resolved_at = resolved_at - interval '300 s', "
                     "resolve_after = resolve_after - interval '300 s' WHERE did = $1", CAROL)
    assert await resolve_due_identities(db, resolver, handles) == 1
    assert (await identity(db, CAROL))["retry_in"] == datetime.timedelta(seconds=2 * RETRY_BASE_S)


def test_retry_delay_doubles_up_to_the_cap() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    def row(error: str | None, previous_s: float) -> dict[str, Any]:
        return {"resolve_error": error, "resolved_at": now,
                "resolve_after": now + datetime.timedelta(seconds=previous_s)}

    assert retry_delay_s(row(None, 0)) == RETRY_BASE_S  # first failure (e.g. after an event)
    assert retry_delay_s(row("x", 600)) == 1200
    assert retry_delay_s(row("x", RETRY_CAP_S)) == RETRY_CAP_S
    assert retry_delay_s(row("x", 1)) == RETRY_BASE_S


async def test_identity_events_make_the_resolver_fetch_afresh_and_older_ones_lose(
        db: Database, writer_db: Database, network: Network, resolver: DidResolver,
        handles: HandleVerifier) -> None:
    await ingest(writer_db, [f.profile(C_GOOD, createdBy=ALICE, handle="c-good.coves.test")])
    network.publish(ALICE, "alice.coves.test")
    await resolve_due_identities(db, resolver, handles)
    resolved_us = (await identity(db, ALICE))["handle_time_us"]
    network.publish(ALICE, "alice2.coves.test")  # the resolver still caches the old document

    # An identity event older than our resolution (replayed late) changes nothing.
    await ingest(writer_db, [f.identity(ALICE, "stale.coves.test", time_us=resolved_us - 1_000_000)])
    alice = await identity(db, ALICE)
    assert alice["handle"] == "alice.coves.test" and alice["resolve_after"] is None

    # A newer one makes the row due, and the round bypasses the cached document.
    await ingest(writer_db, [f.identity(ALICE, time_us=resolved_us + 1)], name="memory2")
    assert (await identity(db, ALICE))["resolve_after"] is not None
    assert await resolve_due_identities(db, resolver, handles) == 1
    alice = await identity(db, ALICE)
    assert alice["handle"] == "alice2.coves.test" and alice["resolve_after"] is None


async def test_a_row_changed_by_an_identity_event_during_resolution_is_left_for_the_next_round(
        db: Database, writer_db: Database, network: Network, resolver: DidResolver,
        handles: HandleVerifier) -> None:
    await ingest(writer_db, [f.profile(C_GOOD, createdBy=ALICE, handle="c-good.coves.test")])
    await db.execute("UPDATE identities SET resolve_after = NULL WHERE did <> $1", ALICE)
    gate = trio.Event()
    network.publish(ALICE, "old.coves.test")
    network.server.routes[f"/{ALICE}"] = Reply(body=json_reply(plc_doc(ALICE, "old.coves.test")).body,
                                                gate=gate)
    event_us = time.time_ns() // 1000 + 60_000_000  # an event "from the future" wins any race
    async with trio.open_nursery() as nursery:
        nursery.start_soon(resolve_due_identities, db, resolver, handles)
        await network.server.wait_for_requests(1)
        await ingest(writer_db, [f.identity(ALICE, "new.coves.test", time_us=event_us)])
        gate.set()
    alice = await identity(db, ALICE)
    assert alice["handle"] == "new.coves.test" and alice["handle_time_us"] == event_us
    assert alice["resolved_at"] is None and alice["resolve_after"] is not None  # still due


async def test_host_verifier_marks_communities_and_keeps_one_reject_per_failing_community(
        db: Database, writer_db: Database, https_server: TestServer, fetcher: Fetcher) -> None:
    host = f"did:web:coves.test%3A{https_server.port}"
    https_server.routes["/.well-known/did.json"] = json_reply(
        {"id": host, "alsoKnownAs": ["at://coves.test"]})
    await ingest(writer_db, [f.profile(C_GOOD, hostedBy=host, handle="c-good.coves.test"),
                             f.profile(C_BAD, hostedBy=host, handle="c-bad.other.test")])
    hosting = HostVerifier(fetcher)
    failed_before = sample("coves_host_checks_total", outcome="failed")

    assert await verify_due_communities(db, hosting) == 2
    rows = {r["did"]: r for r in await table(db, "SELECT * FROM communities")}
    assert rows[C_GOOD]["host_ok"] and rows[C_GOOD]["host_checked_for"] == f"{host} c-good.coves.test"
    assert not rows[C_BAD]["host_ok"] and "is not under coves.test" in rows[C_BAD]["host_detail"]
    assert sample("coves_host_checks_total", outcome="failed") == failed_before + 1
    reject = await only_reject(db)
    assert (reject["did"], reject["collection"], reject["rkey"], reject["rev"], reject["source"]) == (
        C_BAD, f.PROFILE, "self", rows[C_BAD]["rev"], "host_verifier")
    assert "is not under coves.test" in reject["detail"]
    raw = bytes(reject["raw"])
    assert bytes(reject["fingerprint"]) == hashlib.sha256(b"unverified_host\0" + raw).digest()
    event = decode_jetstream(raw)  # a Jetstream v1 event `coves redrive` can read back
    assert (event.did, event.rev, event.record) == (C_BAD, rows[C_BAD]["rev"], rows[C_BAD]["record"])
    assert DEFAULT_REGISTRY.handle(event)

    assert await verify_due_communities(db, hosting) == 0  # nothing due: no re-check, no new reject
    await db.execute("UPDATE communities SET host_checked_at = now() - interval '6 minutes' "
                     "WHERE did = $1", C_BAD)
    assert await verify_due_communities(db, hosting) == 1  # a failure is re-checked after 5 min
    assert (await only_reject(db))["seen_count"] == 2  # same profile version: same row

    await ingest(writer_db, [f.profile(C_BAD, hostedBy=host, handle="c-bad2.other.test")])
    assert await verify_due_communities(db, hosting) == 1
    reject = await only_reject(db)  # the older version's reject is replaced
    assert "c-bad2.other.test" in reject["detail"] and reject["seen_count"] == 1

    await ingest(writer_db, [f.profile(C_BAD, hostedBy=host, handle="c-bad.coves.test")])
    assert await verify_due_communities(db, hosting) == 1
    assert (await table(db, "SELECT host_ok FROM communities WHERE did = $1", C_BAD))[0]["host_ok"]
    assert await table(db, "SELECT id FROM ingest_rejects") == []


async def only_reject(db: Database) -> dict[str, Any]:
    rejects = await table(db, "SELECT * FROM ingest_rejects WHERE reason = 'unverified_host'")
    assert len(rejects) == 1
    return rejects[0]


async def test_a_community_without_a_handle_waits_for_its_dids_verified_handle(
        db: Database, writer_db: Database, network: Network, fetcher: Fetcher,
        resolver: DidResolver, handles: HandleVerifier) -> None:
    host = f"did:web:coves.test%3A{network.server.port}"
    network.server.routes["/.well-known/did.json"] = json_reply(
        {"id": host, "alsoKnownAs": ["at://coves.test"]})
    await ingest(writer_db, [f.profile(C_THREE, hostedBy=host)])
    hosting = HostVerifier(fetcher)
    assert await verify_due_communities(db, hosting) == 0  # its DID is not resolved yet

    network.publish(C_THREE, "c-three.coves.test")
    await resolve_due_identities(db, resolver, handles)
    assert await verify_due_communities(db, hosting) == 1
    row = (await table(db, "SELECT * FROM communities WHERE did = $1", C_THREE))[0]
    assert row["host_ok"] and row["host_checked_for"] == f"{host} c-three.coves.test"


async def test_skip_marks_every_community_verified(db: Database, writer_db: Database,
                                                   fetcher: Fetcher) -> None:
    await ingest(writer_db, [f.profile(C_GOOD, handle="c-good.elsewhere.test")])
    skipped_before = sample("coves_host_checks_total", outcome="skipped")
    assert await verify_due_communities(db, HostVerifier(fetcher, skip=True)) == 1
    row = (await table(db, "SELECT host_ok, host_detail FROM communities"))[0]
    assert row["host_ok"] and "SKIP_DID_WEB_VERIFICATION" in row["host_detail"]
    assert sample("coves_host_checks_total", outcome="skipped") == skipped_before + 1


class _FlakyDatabase:
    """Fails `failures` times with DatabaseUnavailable, then finds no work; counts the calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.calls_changed = trio.lowlevel.ParkingLot()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.calls += 1
        self.calls_changed.unpark_all()
        if self.calls <= self.failures:
            raise DatabaseUnavailable("database unavailable: connection refused")
        return []

    async def wait_for_calls(self, count: int) -> None:
        while self.calls < count:
            await self.calls_changed.park()


@pytest.mark.parametrize("task", ["handle_resolver", "host_verifier"])
async def test_the_loops_back_off_on_database_outages_and_carry_on(
        task: str, autojump_clock: trio.testing.MockClock, fetcher: Fetcher) -> None:
    flaky = _FlakyDatabase(failures=3)
    errors_before = sample("coves_identity_database_errors_total", task=task)
    async with trio.open_nursery() as nursery:
        if task == "handle_resolver":
            await nursery.start(run_handle_resolver, flaky, DidResolver(fetcher),
                                HandleVerifier(fetcher, dns_resolver=None))
        else:
            await nursery.start(run_host_verifier, flaky, HostVerifier(fetcher))
        started = trio.current_time()
        await flaky.wait_for_calls(6)  # 3 failures, then idle rounds
        nursery.cancel_scope.cancel()
    assert sample("coves_identity_database_errors_total", task=task) == errors_before + 3
    # backoffs of ~0.5-1, 1-2, 2-4 s, then idle pauses of 2 s: virtual time, no real waiting
    assert 3.5 <= trio.current_time() - started <= 12
