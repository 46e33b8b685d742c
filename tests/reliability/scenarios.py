"""The reliability suite's table: every scenario it tries (issue 9), and what each run found.

Each test of tests/reliability is marked `@pytest.mark.scenario("<id>")` with an id from
SCENARIOS and may note measured numbers with the `scenario` fixture; the suite prints one row per
scenario at the end of the run (tests/reliability/conftest.py). docs/RELIABILITY.md keeps the same
rows with the numbers of a recorded run; tests/reliability/test_table.py checks that every id here
appears there. Rows marked REFERENCED are proved by older tests elsewhere in tests/ (named in the
row): the suite lists them so the table is the whole picture, but does not run them twice.
"""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = ["REFERENCED", "SCENARIOS", "Outcome"]

SCENARIOS: Final[dict[str, str]] = {
    # ---- engine ----
    "crash-sigkill": "200k forum events (5 % duplicated, 5 % reordered) through the emulator; the "
                     "engine process SIGKILLed 50 times at random points; final database vs a clean "
                     "`coves replay` of the same events, every table, every counter; `coves reconcile`",
    "postgres-restarts": "Postgres stopped and started 5 times under a running engine process "
                         "mid-stream; nothing lost; time from the database's return to the next "
                         "committed batch",
    "upstream-abrupt-close": "emulator drops TCP without a close frame mid-stream",
    "upstream-close-1011": "emulator closes cleanly with 1011 and a reason mid-stream",
    "upstream-stall": "emulator goes silent (connection open, pings answered)",
    "upstream-garbage": "a binary frame that is neither JSON nor zstd",
    "upstream-oversize": "a 5 MiB event (over the 4 MiB event cap, under the socket cap)",
    "upstream-slow": "a server trickling 1 event per 150 ms with a 2 s idle timeout",
    "upstream-restart-cursor": "every connection dropped at once (server restart); resume by cursor",
    "upstream-listener-restart": "the server's listener gone (connection refused) and back on the "
                                 "same port",
    "event-fuzz": "100k hypothesis-drawn events (invalid UTF-8, deep nesting, huge strings, wrong "
                  "types, missing fields, unknown kinds, bogus DIDs/TIDs/CIDs, NUL, lone "
                  "surrogates) through the real pipeline into Postgres",
    # ---- API ----
    "api-schemathesis": "schemathesis, positive and negative generation, every operation of the "
                        "OpenAPI document against a real Hypercorn",
    "api-body-limit": "request bodies over the 6 MB limit (Content-Length and chunked) to every "
                      "kind of route",
    "api-header-limit": "request headers over the limit (one big header; many headers)",
    # ---- security ----
    "jwt-attacks": "service-auth JWT attacks over HTTP on optional- and required-auth methods "
                   "(alg none/None/HS256/RS256/EdDSA, embedded jwk/jku/x5u/kid, stripped or "
                   "mangled signature, wrong aud/lxm/iss, another DID's key, type confusion, "
                   "oversize token)",
    "jwt-expiry": "expired, not-yet-valid and skewed tokens at the leeway's edges",
    "jwt-replay": "the same token presented twice: reads accept it until exp, single-use "
                  "verification (writes) refuses the second use",
    "ratelimit-forwarded-for": "X-Forwarded-For / X-Real-IP / Forwarded and look-alikes from an "
                               "untrusted peer, and through a trusted proxy, over real sockets "
                               "from distinct 127.0.0.x addresses",
    "ssrf-remote-fetches": "did:web issuers (resolver and API tokens), community hostedBy and "
                           "handles naming loopback, private, link-local, metadata, CGN and "
                           "IPv6-embedded addresses, redirects to them, and size/time/redirect "
                           "caps, through the real identity wiring against a TLS server on "
                           "127.0.0.1",
    "sql-injection": "SQL-injection strings in every text parameter of every query of the "
                     "OpenAPI document, over a real Hypercorn; every table fingerprinted before "
                     "and after",
    "secrets-in-logs": "`coves` commands (ok, database down, malformed URL and key, production "
                       "check) and the API with its write path (writes ok, refused, PDS down; bad "
                       "tokens) at debug level; output, log lines and error bodies grepped for "
                       "each secret",
}

# Scenarios proved by tests outside this folder: id → where.
REFERENCED: Final[dict[str, str]] = {
    "ref-jetstream-faults": "tests/engine/test_jetstream_source.py: each emulator fault alone on a "
                            "small stream, backpressure, compression, socket-limit oversize",
    "ref-crash-model": "tests/engine/test_crash.py: 6 SIGKILLs over a model history (15k events)",
    "ref-outage-breaker": "tests/engine/test_outage.py: breaker opens, supervisor resumes from the "
                          "committed cursor (in-process)",
    "ref-properties": "tests/properties/test_ingest_model.py: shuffled, duplicated, cut histories "
                      "end in the model's state (Hypothesis)",
    "ref-jwt-verifier": "tests/api/test_auth.py: 13 refused token kinds at the verifier, rotation, "
                        "caching, AUTH_SKIP_VERIFY",
    "ref-fetcher": "tests/identity/test_fetch.py: private literals and names, redirects re-checked, "
                   "64 KiB cap, 5 s limit, pinned address + SNI",
    "ref-log-redaction": "tests/engine/test_logs.py: redaction of fields, values and tracebacks",
    "ref-openapi-fuzz": "tests/api/test_openapi.py: schemathesis, 25 positive examples per operation",
    "ref-ratelimit": "tests/api/test_ratelimit.py, tests/e2e/test_ratelimit_e2e.py: budgets, "
                     "windows, right-most untrusted X-Forwarded-For hop",
}


@dataclasses.dataclass
class Outcome:
    """What the run found for one scenario: test instances passed/failed, and noted numbers."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    numbers: list[str] = dataclasses.field(default_factory=list)

    @property
    def result(self) -> str:
        if self.failed:
            return f"FAILED ({self.failed} of {self.passed + self.failed})"
        if self.passed:
            return "survived" if self.passed == 1 else f"survived ({self.passed} cases)"
        return "skipped" if self.skipped else "not run"
