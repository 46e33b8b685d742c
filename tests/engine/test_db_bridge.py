"""The trio-asyncio bridge: asyncio's stray error reports must not end the program."""

from __future__ import annotations

import asyncio
import logging

import pytest
import trio
import trio.testing

from engine.db import Database, open_bridge


async def test_an_error_asyncio_reports_outside_an_awaited_call_is_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    # What asyncpg does while a server goes away: it reports to the loop's exception handler
    # ("Resetting connection with an active transaction"). trio-asyncio's default handler
    # raised that into the loop's nursery and ended the engine mid-outage.
    async with open_bridge():
        loop = asyncio.get_event_loop()
        with caplog.at_level(logging.WARNING, logger="engine.db"):
            loop.call_exception_handler({"message": "Resetting connection with an active transaction",
                                         "exception": ConnectionError("server closed")})
            # Every task has run, so a report raised into the nursery would have ended it here.
            await trio.testing.wait_all_tasks_blocked()
        still_running = True
    assert still_running
    [record] = [r for r in caplog.records if r.name == "engine.db"]
    assert record.asyncio_message == "Resetting connection with an active transaction"
    assert record.error == "ConnectionError: server closed"


async def test_a_query_on_a_live_database_still_works_after_a_report(db: Database) -> None:
    asyncio.get_event_loop().call_exception_handler({"message": "noise"})
    await trio.testing.wait_all_tasks_blocked()
    assert await db.fetchval("SELECT 1") == 1


async def test_connections_run_without_jit(db: Database) -> None:
    # JIT compiled a merge for ~20 ms that runs in one (planner costs above jit_above_cost).
    assert await db.fetchval("SHOW jit") == "off"
