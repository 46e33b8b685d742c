"""A small async XRPC client for the reference PDS, for tests (works under Trio via httpx).

Covers what end-to-end tests need to drive a PDS: accounts, record writes, blobs, service
auth and repo export. Every failed call raises `PdsCallError` with the XRPC error name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

import httpx

__all__ = ["Account", "PdsCallError", "PdsClient", "unique_handle"]

DEFAULT_PASSWORD: Final = "coves-test-password"
HANDLE_DOMAIN: Final = ".test"
# The PDS takes service handles whose name (the part before `.test`) has 3 to 18
# characters and no dot, and refuses reserved names such as `admin`
# (@atproto/pds 0.5.35, dist/handle/index.js ensureHandleServiceConstraints).
MIN_HANDLE_NAME_CHARS: Final = 3
MAX_HANDLE_NAME_CHARS: Final = 18
REQUEST_TIMEOUT_S: Final = 30.0
LIST_REPOS_PAGE: Final = 1000

JsonObject = dict[str, Any]


def unique_handle(prefix: str) -> str:
    """Return `<prefix><8 random hex>.test`, fit for a session-wide PDS (prefix cut to 10)."""
    return f"{prefix[:MAX_HANDLE_NAME_CHARS - 8]}{secrets.token_hex(4)}{HANDLE_DOMAIN}"


class PdsCallError(Exception):
    """The PDS answered an XRPC call with a non-2xx status."""

    def __init__(self, nsid: str, status: int, error: str | None, message: str | None) -> None:
        super().__init__(f"{nsid}: HTTP {status} {error}: {message}")
        self.nsid = nsid
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True)
class Account:
    """An account created on a PDS, with the session tokens it was created with."""

    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str


class PdsClient:
    """XRPC calls against one PDS. Use as `async with PdsClient(url) as pds:`."""

    def __init__(self, base_url: str, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def __aenter__(self) -> PdsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_account(
        self, handle: str, password: str = DEFAULT_PASSWORD, email: str | None = None
    ) -> Account:
        """Create an account with a `<name>.test` handle and a fresh did:plc.

        Raises:
            ValueError: the handle is not `<name>.test` with a 3 to 18 character name.
            PdsCallError: the PDS refused it (e.g. taken or reserved).
        """
        name = handle.removesuffix(HANDLE_DOMAIN)
        if (
            name == handle
            or "." in name
            or not MIN_HANDLE_NAME_CHARS <= len(name) <= MAX_HANDLE_NAME_CHARS
        ):
            raise ValueError(
                f"handle {handle!r} must be <name>{HANDLE_DOMAIN} with a name of "
                f"{MIN_HANDLE_NAME_CHARS} to {MAX_HANDLE_NAME_CHARS} characters and no dots"
            )
        body = {"handle": handle, "password": password, "email": email or f"{name}@example.com"}
        out = await self._call("com.atproto.server.createAccount", json=body)
        return Account(
            did=out["did"],
            handle=out["handle"],
            access_jwt=out["accessJwt"],
            refresh_jwt=out["refreshJwt"],
        )

    async def create_record(
        self,
        account: Account,
        collection: str,
        record: JsonObject,
        rkey: str | None = None,
        validate: bool = False,
    ) -> tuple[str, str]:
        """Create a record (`$type` defaults to the collection); return `(uri, cid)`."""
        body: JsonObject = {
            "repo": account.did,
            "collection": collection,
            "record": {"$type": collection, **record},
            "validate": validate,
        }
        if rkey is not None:
            body["rkey"] = rkey
        out = await self._call("com.atproto.repo.createRecord", account, json=body)
        return out["uri"], out["cid"]

    async def put_record(
        self,
        account: Account,
        collection: str,
        rkey: str,
        record: JsonObject,
        validate: bool = False,
    ) -> tuple[str, str]:
        """Create or replace the record at `collection/rkey`; return `(uri, cid)`."""
        body = {
            "repo": account.did,
            "collection": collection,
            "rkey": rkey,
            "record": {"$type": collection, **record},
            "validate": validate,
        }
        out = await self._call("com.atproto.repo.putRecord", account, json=body)
        return out["uri"], out["cid"]

    async def delete_record(self, account: Account, collection: str, rkey: str) -> None:
        """Delete the record at `collection/rkey` (no error if it does not exist)."""
        body = {"repo": account.did, "collection": collection, "rkey": rkey}
        await self._call("com.atproto.repo.deleteRecord", account, json=body)

    async def apply_writes(
        self, account: Account, writes: list[JsonObject], validate: bool = False
    ) -> list[JsonObject]:
        """Apply several writes in one commit; return the per-write results.

        Each write is the lexicon's union member, e.g.
        `{"$type": "com.atproto.repo.applyWrites#create", "collection": …, "value": {…}}`
        (`#update` also takes `rkey`; `#delete` takes `collection` and `rkey`).
        """
        body = {"repo": account.did, "writes": writes, "validate": validate}
        out = await self._call("com.atproto.repo.applyWrites", account, json=body)
        results: list[JsonObject] = out.get("results", [])
        return results

    async def upload_blob(self, account: Account, data: bytes, mime: str) -> JsonObject:
        """Upload a blob; return its ref (`{"$type": "blob", "ref": {"$link": cid}, …}`).

        The PDS keeps the blob only if a record references it soon after.
        """
        out = await self._call(
            "com.atproto.repo.uploadBlob", account, content=data, headers={"content-type": mime}
        )
        blob: JsonObject = out["blob"]
        return blob

    async def get_service_auth(
        self, account: Account, aud: str, lxm: str, exp: int | None = None
    ) -> str:
        """Ask the PDS for a service-auth JWT (signed with the account's key) for `aud`."""
        params: dict[str, str | int] = {"aud": aud, "lxm": lxm}
        if exp is not None:
            params["exp"] = exp
        out = await self._call("com.atproto.server.getServiceAuth", account, params=params)
        token: str = out["token"]
        return token

    async def list_repos(self) -> list[JsonObject]:
        """List every repo on the PDS (`{did, head, rev, active, …}`), following cursors."""
        repos: list[JsonObject] = []
        params: dict[str, str | int] = {"limit": LIST_REPOS_PAGE}
        while True:
            out = await self._call("com.atproto.sync.listRepos", params=params)
            repos.extend(out["repos"])
            if not out.get("cursor") or not out["repos"]:
                return repos
            params["cursor"] = out["cursor"]

    async def get_repo(self, did: str) -> bytes:
        """Export a whole repo as CAR v1 bytes."""
        response = await self._send("GET", "com.atproto.sync.getRepo", params={"did": did})
        return response.content

    async def _call(
        self,
        nsid: str,
        account: Account | None = None,
        *,
        params: dict[str, str | int] | None = None,
        json: JsonObject | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> JsonObject:
        method = "GET" if json is None and content is None else "POST"
        response = await self._send(
            method, nsid, account, params=params, json=json, content=content, headers=headers
        )
        if not response.content:
            return {}
        out: JsonObject = response.json()
        return out

    async def _send(
        self,
        method: str,
        nsid: str,
        account: Account | None = None,
        *,
        params: dict[str, str | int] | None = None,
        json: JsonObject | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if account is not None:
            headers["authorization"] = f"Bearer {account.access_jwt}"
        response = await self._http.request(
            method, f"/xrpc/{nsid}", params=params, json=json, content=content, headers=headers
        )
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:500]}
        raise PdsCallError(nsid, response.status_code, body.get("error"), body.get("message"))
