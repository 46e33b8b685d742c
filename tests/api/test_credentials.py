"""Community tokens (api/credentials.py) on the reference PDS: refreshed when they expire
within 5 minutes, a new session when the refresh token is refused, one refresh at a time."""

from __future__ import annotations

import datetime as dt

import trio

from api.credentials import REFRESH_MARGIN_S, CommunityTokens, token_expiry
from tests import factories as f

from .conftest import WriteWorld
from .test_pds_client import counted
from .test_community_write import create, fresh_name


async def test_tokens_are_refreshed_near_expiry_once_for_concurrent_callers(
        world: WriteWorld) -> None:
    name = fresh_name()
    assert (await create(world, f.did("creator"), name))[0] == 200
    community = await world.writes.store.by_name(name)
    expires = community.access_expires_at
    assert expires is not None and expires == token_expiry(community.access_jwt)
    now = expires - dt.timedelta(seconds=REFRESH_MARGIN_S + 60)
    tokens = CommunityTokens(world.writes.store, world.writes.pds, clock=lambda: now)
    assert await tokens.access_token(community) == community.access_jwt and tokens.refreshes == 0
    # Within 5 min of the old token's expiry: refresh. (The clock is the real one again once a
    # refresh happened: the new token's exp is then ~its full lifetime away.)
    stale = expires - dt.timedelta(seconds=REFRESH_MARGIN_S - 60)
    tokens = CommunityTokens(world.writes.store, world.writes.pds,
                             clock=lambda: stale if tokens.refreshes == 0 else dt.datetime.now(dt.UTC))
    got: list[str] = []

    async def one() -> None:
        got.append(await tokens.access_token(community))

    refreshed_before = counted("com.atproto.server.refreshSession", "ok")
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    # (an access token made within the same second as the old one may equal it byte for byte)
    assert tokens.refreshes == 1 and len(set(got)) == 1
    assert counted("com.atproto.server.refreshSession", "ok") == refreshed_before + 1
    stored = await world.writes.store.by_name(name)
    assert stored.access_jwt == got[0] and stored.refresh_jwt != community.refresh_jwt


async def test_a_refused_refresh_token_falls_back_to_a_new_session(world: WriteWorld) -> None:
    name = fresh_name()
    assert (await create(world, f.did("creator"), name))[0] == 200
    community = await world.writes.store.by_name(name)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    tokens = CommunityTokens(world.writes.store, world.writes.pds, clock=lambda: later)
    broken = community.__class__(**{**{k: getattr(community, k) for k in community.__slots__},
                                    "refresh_jwt": "not-a-token"})
    await world.writes.store.store_session(name, type("S", (), {
        "did": community.did, "access_jwt": community.access_jwt, "refresh_jwt": "not-a-token"})())
    refused_before = counted("com.atproto.server.refreshSession", "client_error")
    sessions_before = counted("com.atproto.server.createSession", "ok")
    await tokens.access_token(broken)
    assert tokens.refreshes == 1
    assert counted("com.atproto.server.refreshSession", "client_error") == refused_before + 1
    assert counted("com.atproto.server.createSession", "ok") == sessions_before + 1
    # the new token works: a post goes through with it
    status, _ = await world.call("social.coves.community.post.create",
                                 {"community": community.did, "title": "after a new session"},
                                 caller=f.did("author"))
    assert status == 200
