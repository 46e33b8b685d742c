"""Secrets never reach a log line, a command's output or an API error body: the database
password in DATABASE_URL, COVES_ENCRYPTION_KEY, CURSOR_SECRET, a community account's password
and session tokens, and the JWTs callers send — captured at debug level while things go right
and wrong (tests/engine/test_logs.py proves the redaction rules one by one: ref-log-redaction).
"""

from __future__ import annotations

import base64
import io
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from engine.logs import configure_logging
from tests import factories as f
from tests.api.conftest import (WRITE_ENV, WriteWorld, clock, make_write_world,  # noqa: F401
                                resolver)  # clock, resolver: fixtures make_write_world uses
from tests.api.keys import AUDIENCE

from .conftest import Scenario
from .processes import run_coves

CREATE = "social.coves.community.create"
UPDATE = "social.coves.community.update"
POST = "social.coves.community.post.create"
TIMELINE = "/xrpc/social.coves.feed.getTimeline"


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Every log line of the process, at debug level, as `coves` writes them (JSON)."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("debug", "json")
    yield stream
    configure_logging("info", "console")


@pytest.mark.scenario("secrets-in-logs")
async def test_commands_never_print_the_secrets_they_were_given(
        database_url: str, scenario: Scenario) -> None:
    password = "pw-" + secrets.token_hex(8)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    bad_key = base64.b64encode(secrets.token_bytes(40)).decode()  # 40 bytes: refused
    cursor_secret = "cs-" + secrets.token_hex(16)
    reachable = with_password(database_url, password)  # local trust auth ignores the password
    runs = {
        "migrate, debug level": (reachable, ("migrate",), 0, {}),
        "migrate, database refusing connections": (
            f"postgresql://coves:{password}@127.0.0.1:9/coves", ("migrate",), 1, {}),
        "migrate, malformed DATABASE_URL": (
            f"postgresql://coves:{password}@127.0.0.1:notaport/coves", ("migrate",), 2, {}),
        "check-config, production": (reachable, ("check-config",), 2, {"COVES_ENV": "production"}),
        "migrate, malformed COVES_ENCRYPTION_KEY": (
            reachable, ("migrate",), 2, {"COVES_ENCRYPTION_KEY": bad_key}),
        "reconcile": (reachable, ("reconcile",), 0, {}),
    }
    for name, (url, args, status, env) in runs.items():
        settings = {"COVES_ENCRYPTION_KEY": key, "CURSOR_SECRET": cursor_secret, **env}
        done = await run_coves(url, *args, check=False, LOG_LEVEL="debug", **settings)
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == status, (name, output)
        for secret in (password, key, bad_key, cursor_secret):
            assert secret not in output, (name, secret)
    scenario.note(f"{len(runs)} `coves` runs (ok and failing) at debug level: no DATABASE_URL "
                  "password, COVES_ENCRYPTION_KEY or CURSOR_SECRET in their output")


@pytest.mark.scenario("secrets-in-logs")
async def test_api_logs_and_error_bodies_never_carry_tokens_or_credentials(
        make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]],  # noqa: F811
        captured: io.StringIO, scenario: Scenario) -> None:
    sent: list[str] = []  # every JWT a caller sent
    bodies: list[str] = []  # every response body

    async def call(world: WriteWorld, nsid: str, body: Any, caller: str) -> int:
        token = world.resolver.token(caller, nsid)
        sent.append(token)
        response = await world.client.post(f"/xrpc/{nsid}", json=body,
                                           headers={"Authorization": f"Bearer {token}"})
        bodies.append(await response.get_data(as_text=True))
        return response.status_code

    async def get(world: WriteWorld, token: str) -> int:
        sent.append(token)
        response = await world.client.get(TIMELINE, headers={"Authorization": f"Bearer {token}"})
        bodies.append(await response.get_data(as_text=True))
        return response.status_code

    creator, name = f.did("creator"), "s" + secrets.token_hex(5)
    statuses = []
    async with make_write_world() as world:
        statuses.append(await call(world, CREATE, {"name": name, "description": "d"}, creator))
        stored = await world.writes.store.by_name(name)
        community = stored.did
        statuses += [
            await call(world, CREATE, {"name": name, "description": "d"}, creator),  # taken
            await call(world, UPDATE, {"community": community, "description": "x"},
                       f.did("stranger")),  # not the creator
            await call(world, POST, {"community": community, "title": "t"}, creator),
            await call(world, POST, {"community": community, "title": "x" * 10_000}, creator),
        ]
        bad = {"expired": world.resolver.token(creator, "social.coves.feed.getTimeline",
                                               exp_in=-600),
               "unknown issuer": jwt.encode(
                   {"iss": f.did("nobody"), "aud": AUDIENCE, "lxm": "social.coves.feed.getTimeline",
                    "exp": int(time.time()) + 60}, ec.generate_private_key(ec.SECP256K1()),
                   algorithm="ES256K"),
               "wrong audience": world.resolver.token(creator, "social.coves.feed.getTimeline",
                                                      aud="did:web:elsewhere.test")}
        statuses += [await get(world, token) for token in bad.values()]
    async with make_write_world(PDS_URL="http://127.0.0.1:9") as down:  # the PDS unreachable
        statuses.append(await call(down, CREATE, {"name": "d" + name, "description": "d"},
                                   creator))
    assert statuses == [200, 409, 403, 200, 400, 401, 401, 401, statuses[-1]]
    assert statuses[-1] in (502, 503)
    logs = captured.getvalue()
    assert logs.count("\n") >= 5, logs  # the run did log: the check below is not vacuous
    found = {"COVES_ENCRYPTION_KEY": WRITE_ENV["COVES_ENCRYPTION_KEY"],
             "community password": stored.password, "community access JWT": stored.access_jwt,
             "community refresh JWT": stored.refresh_jwt}
    found.update({f"caller token {n}": token for n, token in enumerate(sent)})
    for what, secret in found.items():
        assert secret and secret not in logs, what
        assert not [body for body in bodies if secret in body], what
    scenario.note(f"API at debug level: {len(statuses)} calls (writes ok, refused, PDS down; bad "
                  f"tokens), {logs.count(chr(10))} log lines and {len(bodies)} bodies hold none "
                  f"of {len(found)} secrets (key, community password and tokens, caller JWTs)")
