"""Community accounts the AppView hosts: their credentials (encrypted) and fresh access tokens.

Rows live in `community_credentials` (sql/0006); every secret in it is sealed by
api/secretbox.py, bound to the community's name and the column. `CommunityTokens.access_token`
hands out an access token that is valid for at least REFRESH_MARGIN_S: a token closer to expiry
is refreshed (`refreshSession`), and when the refresh token is refused too, a new session is
made with the stored password (`createSession`). One refresh at a time per community (a
trio.Lock per name, in this process): concurrent posts wait for it and reuse its result.
With several API processes each may refresh on its own; the PDS accepts that (an old refresh
token keeps working for a grace period, and the password is the last resort).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

import orjson
import trio

from engine.db import Database

from .pds_client import PdsClient, PdsRefused, Session
from .secretbox import SecretBox

__all__ = ["REFRESH_MARGIN_S", "Community", "CommunityTokens", "CredentialStore", "token_expiry"]

LOGGER = logging.getLogger(__name__)
# Refresh when the access token expires within 5 minutes (the rule): a post never
# starts with a token that could expire during its PDS call.
REFRESH_MARGIN_S: Final = 300.0

_COLUMNS: Final = ("name, handle, did, state, created_by, pds_url, email, password_enc, "
                   "access_jwt_enc, refresh_jwt_enc, access_expires_at, key_id")


@dataclasses.dataclass(frozen=True, slots=True)
class Community:
    """A hosted community's account, secrets decrypted."""

    name: str
    handle: str
    did: str | None
    state: str
    created_by: str
    pds_url: str
    email: str
    password: str
    access_jwt: str | None
    refresh_jwt: str | None
    access_expires_at: dt.datetime | None


def token_expiry(jwt: str) -> dt.datetime | None:
    """The `exp` of a JWT we were given by the PDS (not verified: it is our own session)."""
    try:
        payload = jwt.split(".")[1]
        claims: Any = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    except (IndexError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


class CredentialStore:
    """SQL over `community_credentials`, sealing and opening secrets with `box`."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    def _open(self, row: Any) -> Community:
        name = row["name"]

        def secret(column: str) -> str | None:
            value = row[column]
            return None if value is None else self._box.open(value, f"{name}/{column}",
                                                             key_id=row["key_id"])

        return Community(name=name, handle=row["handle"], did=row["did"], state=row["state"],
                         created_by=row["created_by"], pds_url=row["pds_url"], email=row["email"],
                         password=secret("password_enc") or "", access_jwt=secret("access_jwt_enc"),
                         refresh_jwt=secret("refresh_jwt_enc"),
                         access_expires_at=row["access_expires_at"])

    async def reserve(self, *, name: str, handle: str, created_by: str, pds_url: str, email: str,
                      password: str) -> bool:
        """Insert a 'provisioning' row for `name`; False when the name (or handle) is taken."""
        sealed = self._box.seal(password, f"{name}/password_enc")
        inserted = await self._db.fetchval(
            "INSERT INTO community_credentials (name, handle, created_by, pds_url, email, "
            "password_enc, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING true",
            name, handle, created_by, pds_url, email, sealed, self._box.key_id)
        return bool(inserted)

    async def release(self, name: str) -> None:
        """Forget a reservation whose account was never created (nothing half-written stays)."""
        await self._db.execute(
            "DELETE FROM community_credentials WHERE name = $1 AND did IS NULL", name)

    async def by_name(self, name: str) -> Community | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM community_credentials WHERE name = $1", name)
        return None if row is None else self._open(row)

    async def find(self, *, did: str | None = None, handle: str | None = None,
                   name: str | None = None) -> Community | None:
        """The hosted community with this DID, handle or name (ready ones only)."""
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM community_credentials WHERE state = 'ready' "
            "AND (did = $1 OR handle = lower($2) OR name = lower($3)) LIMIT 1", did, handle, name)
        return None if row is None else self._open(row)

    async def store_session(self, name: str, session: Session) -> None:
        """Keep the account's DID and its session tokens (sealed)."""
        await self._db.execute(
            "UPDATE community_credentials SET did = $2, access_jwt_enc = $3, refresh_jwt_enc = $4, "
            "access_expires_at = $5, updated_at = now() WHERE name = $1",
            name, session.did, self._box.seal(session.access_jwt, f"{name}/access_jwt_enc"),
            self._box.seal(session.refresh_jwt, f"{name}/refresh_jwt_enc"),
            token_expiry(session.access_jwt))

    async def mark_ready(self, name: str) -> None:
        await self._db.execute("UPDATE community_credentials SET state = 'ready', updated_at = now() "
                               "WHERE name = $1", name)


class CommunityTokens:
    """Fresh access tokens for hosted communities (see the module docstring).

    Args:
        clock: wall-clock time (tests move it to make tokens look old).
    """

    def __init__(self, store: CredentialStore, pds: PdsClient, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._store = store
        self._pds = pds
        self._clock = clock
        self._locks: defaultdict[str, trio.Lock] = defaultdict(trio.Lock)
        self.refreshes = 0  # sessions renewed (refreshSession or createSession), for tests

    def _fresh(self, community: Community) -> bool:
        expires = community.access_expires_at
        return (community.access_jwt is not None and expires is not None
                and (expires - self._clock()).total_seconds() > REFRESH_MARGIN_S)

    async def access_token(self, community: Community) -> str:
        """An access token of `community` valid for at least REFRESH_MARGIN_S.

        Error handling: a refused refresh falls back to createSession with the stored password;
        PdsDown (and a refused createSession) propagate to the caller.
        """
        if self._fresh(community):
            assert community.access_jwt is not None
            return community.access_jwt
        async with self._locks[community.name]:
            current = await self._store.by_name(community.name) or community
            if self._fresh(current):  # another request refreshed it while we waited
                assert current.access_jwt is not None
                return current.access_jwt
            session = await self._renew(current)
            await self._store.store_session(current.name, session)
            self.refreshes += 1
            return session.access_jwt

    async def _renew(self, community: Community) -> Session:
        if community.refresh_jwt is not None:
            try:
                return await self._pds.refresh_session(community.pds_url, community.refresh_jwt)
            except PdsRefused as exc:
                LOGGER.info("community refresh token refused: new session",
                            extra={"community": community.name, "error": exc.error})
        return await self._pds.create_session(community.pds_url, community.did or community.handle,
                                              community.password)
