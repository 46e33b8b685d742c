"""Schemathesis against every operation of the OpenAPI document, over a real Hypercorn, in both
generation modes: valid inputs (positive) and inputs that break the schema on purpose (negative:
wrong types, out-of-range numbers, bad formats, missing required parameters, garbage tokens).
No answer may be a 5xx, and every refusal must carry the XRPC envelope.

tests/api/test_openapi.py already runs 25 positive examples per operation and checks response
schemas; this adds the negative half and the envelope check.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode

from api.app import build_router
from api.openapi import build_openapi
from engine.lexicon import load_default
from tests.api.conftest import api_config
from tests.api.live import LiveServer

from .conftest import OUTCOMES, Scenario
from .live import forum, live_api

DOCUMENT = build_openapi(build_router(api_config()), load_default())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
EXAMPLES_PER_OPERATION = 30
STATUSES: dict[int, int] = {}


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_url: str) -> Iterator[LiveServer]:
    frames, _keys = forum()
    with live_api(pg_admin_url, "fuzz", frames, RATE_LIMIT_PER_MINUTE="1000000",
                  RATE_LIMIT_COMMENTS_PER_MINUTE="1000000") as server:
        yield server


@pytest.mark.scenario("api-schemathesis")
@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error_and_refusals_use_the_envelope(
        case: schemathesis.Case, live: LiveServer, scenario: Scenario) -> None:
    response = case.call(base_url=live.url, timeout=10)
    STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message"} and body["error"], body


def test_statuses_seen_by_the_fuzzer() -> None:
    """Runs after the fuzzing above (file order): puts what it saw in the table."""
    if "api-schemathesis" not in OUTCOMES or not STATUSES:
        pytest.skip("the fuzzing test did not run")
    seen = ", ".join(f"{status}×{count}" for status, count in sorted(STATUSES.items()))
    operations = len(DOCUMENT["paths"])
    Scenario("api-schemathesis").note(
        f"{sum(STATUSES.values()):,} requests over {operations} operations "
        f"(≤ {EXAMPLES_PER_OPERATION} examples each, positive + negative): {seen}; no 5xx")
    assert not [status for status in STATUSES if status >= 500]
