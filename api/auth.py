"""Service-auth JWTs: who is calling, proven by a token their PDS signed for this call.

A user reaches the AppView through their PDS (`atproto-proxy`) or with a token from
`com.atproto.server.getServiceAuth`. Either way the request carries `Authorization: Bearer <jwt>`
signed with the issuer DID's `#atproto` key. We accept it when:
  * `alg` is ES256K or ES256 and matches the issuer's key curve (never `none`, HMAC or others);
  * the signature verifies with the key from the issuer's DID document (did:plc via PLC_URL,
    did:web; resolved by a `DidResolver`, keys cached KEY_TTL_S and refetched once when a
    signature fails, so a rotated key is picked up);
  * `aud` is our INSTANCE_DID and `lxm` the NSID being called;
  * `exp` is in the future and `nbf`/`iat`, when present, are not (LEEWAY_S of clock skew).
AUTH_SKIP_VERIFY=true (development only, refused in production) trusts `iss` without checking
the signature; the claims are still checked.

Replays. A query (a read) accepts the same token again until it expires: reads are idempotent,
and clients reuse one getServiceAuth token for a page of reads. A procedure (a write) must call
`verify(..., single_use=True)`: the token then needs a `jti` (the reference PDS puts a random
nonce in every service-auth token) and each (issuer, jti) is accepted once until the token's
`exp` + LEEWAY_S, remembered in this process's memory (REPLAY_CACHE_SIZE tokens in flight; with
several API processes behind a load balancer, move it to Redis as the rate limits).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, Final, Protocol

import jwt
from cachetools import TLRUCache, TTLCache

from .errors import ExpiredToken, InvalidToken
from .metrics import AUTH_FAILURES, AUTH_VERIFICATIONS
from .multikey import MultikeyError, PublicKey, decode_multikey

__all__ = ["ACCEPTED_ALGORITHMS", "DidDocumentLike", "DidResolver", "ServiceAuthVerifier",
           "bearer_token"]

LOGGER = logging.getLogger(__name__)
ACCEPTED_ALGORITHMS: Final = frozenset({"ES256K", "ES256"})
LEEWAY_S: Final = 30  # clock skew between the PDS that signed and us
KEY_TTL_S: Final = 300  # a rotated key is seen within 5 min, or at once when a signature fails
KEY_CACHE_SIZE: Final = 50_000  # DIDs; ~200 B each
# Single-use tokens still within their lifetime (~60 s from the reference PDS): 100k of them is
# over 1,600 writes a second, far above what the write path takes. ~150 B each. A full cache
# forgets the entry closest to expiry first.
REPLAY_CACHE_SIZE: Final = 100_000


class DidDocumentLike(Protocol):
    """What auth needs of a resolved DID document (engine.identity's DidDocument fits)."""

    @property
    def id(self) -> str: ...

    @property
    def signing_key(self) -> str | None:
        """The `#atproto` verification method's publicKeyMultibase."""


class DidResolver(Protocol):
    """Resolves DIDs to documents (engine/identity/resolver.py's DidResolver fits).

    `resolve` raises for a DID that does not resolve; `purge` forgets a cached document (it may
    return an awaitable).
    """

    async def resolve(self, did: str) -> DidDocumentLike: ...

    def purge(self, did: str) -> Any: ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; None when there is no header.

    Raises:
        InvalidToken: a header with another scheme, or an empty token.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        AUTH_FAILURES.labels("malformed").inc()
        AUTH_VERIFICATIONS.labels("malformed").inc()
        raise InvalidToken("Authorization must be 'Bearer <service-auth JWT>'")
    return token.strip()


class _BadSignature(Exception):
    """The signature did not verify with the key we hold (it may have rotated)."""


def _fail(reason: str, message: str, error: type[InvalidToken] = InvalidToken) -> InvalidToken:
    AUTH_FAILURES.labels(reason).inc()
    AUTH_VERIFICATIONS.labels(reason).inc()
    return error(message)


class ServiceAuthVerifier:
    """Checks service-auth tokens against their issuer's DID document.

    Args:
        resolver: where DID documents come from.
        audience: our service DID; tokens must name it in `aud`.
        skip_verify: AUTH_SKIP_VERIFY (development): do not check signatures.
        clock: seconds since the epoch (tests move it).
    """

    def __init__(self, resolver: DidResolver, *, audience: str, skip_verify: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self._resolver = resolver
        self._audience = audience
        self._skip_verify = skip_verify
        self._clock = clock
        self._keys: TTLCache[str, PublicKey] = TTLCache(KEY_CACHE_SIZE, KEY_TTL_S, timer=clock)
        # (issuer, jti) → the token's exp; kept until exp + LEEWAY_S, after which it is refused
        # as expired anyway.
        self._spent: TLRUCache[tuple[str, str], float] = TLRUCache(
            REPLAY_CACHE_SIZE, lambda _key, exp, _now: exp + LEEWAY_S, timer=clock)

    async def verify(self, token: str, lxm: Collection[str], *, single_use: bool = False) -> str:
        """The caller's DID, once `token` proves it for one of the method names `lxm`.

        A method served under an alias accepts tokens for either name.

        Args:
            single_use: refuse a token presented before (procedures; see the module docstring).

        Raises:
            InvalidToken: malformed, wrong algorithm, unresolvable issuer, bad signature, wrong
                `aud` or `lxm`; with `single_use`, no `jti` or one already used.
            ExpiredToken: past `exp`, or before `nbf`/`iat`.
        """
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, TypeError):  # PyJWT raises TypeError for a non-string `iss`
            raise _fail("malformed", "Token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ACCEPTED_ALGORITHMS:
            raise _fail("algorithm", f"Token algorithm {alg!r} is not accepted (ES256K or ES256)")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer.startswith("did:"):
            raise _fail("malformed", "Token has no issuer DID (iss)")
        did = issuer.split("#", 1)[0]  # a service id (did#atproto_labeler) names its DID
        if self._skip_verify:
            claims = self._check_claims(token, None, alg)
        else:
            claims = await self._verified_claims(token, did, alg)
        called = claims.get("lxm")
        if not isinstance(called, str) or called not in lxm:
            raise _fail("lxm", f"Token is for method {called!r}, not "
                               f"{' or '.join(sorted(lxm))}")
        if single_use:
            self._spend(did, claims)
        AUTH_VERIFICATIONS.labels("ok").inc()
        return did

    def _spend(self, did: str, claims: dict[str, Any]) -> None:
        """Accept this (issuer, jti) once; a second presentation is a replay."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _fail("replay", "This method needs a single-use token with a jti")
        key = (did, jti)
        if key in self._spent:
            raise _fail("replay", "Token was already used")
        self._spent[key] = float(claims["exp"])

    async def _verified_claims(self, token: str, did: str, alg: str) -> dict[str, Any]:
        key = await self._key(did)
        try:
            return self._check_claims(token, key, alg)
        except _BadSignature:
            pass
        # The key may have rotated since we cached it: fetch the document again, once.
        await self._forget(did)
        key = await self._key(did)
        try:
            return self._check_claims(token, key, alg)
        except _BadSignature:
            raise _fail("signature", "Token signature does not verify with the issuer's key") from None

    def _check_claims(self, token: str, key: PublicKey | None, alg: str) -> dict[str, Any]:
        if key is not None and key.alg != alg:
            raise _fail("algorithm", f"Token algorithm {alg} does not match the issuer's "
                                     f"{key.alg} key")
        options: Any = {"require": ["exp", "iss", "aud"], "verify_signature": key is not None,
                        "verify_exp": True, "verify_nbf": True, "verify_iat": True,
                        "verify_aud": True}
        # Without a key (AUTH_SKIP_VERIFY) PyJWT checks the claims only; the key is then unused.
        verifying_key: Any = key.key if key is not None else ""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, verifying_key, algorithms=[alg], audience=self._audience, leeway=LEEWAY_S,
                options=options)
        except jwt.ExpiredSignatureError:
            raise _fail("expired", "Token has expired", ExpiredToken) from None
        except jwt.ImmatureSignatureError:
            raise _fail("expired", "Token is not valid yet (nbf/iat)", ExpiredToken) from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
            raise _fail("claims", f"Token claims refused: {exc}") from None
        except jwt.InvalidSignatureError:
            raise _BadSignature() from None
        except (jwt.PyJWTError, TypeError) as exc:
            raise _fail("malformed", f"Token refused: {exc}") from None
        # PyJWT takes "exp": "1790000000" as a number; the spec's claims are numbers.
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise _fail("malformed", f"Token claim {name} is not a number")
        return claims

    async def _key(self, did: str) -> PublicKey:
        key = self._keys.get(did)
        if key is not None:
            return key
        try:
            document = await self._resolver.resolve(did)
        except Exception as exc:  # boundary: any resolver failure means "cannot verify"
            LOGGER.info("issuer did not resolve", extra={"did": did, "error": repr(exc)})
            raise _fail("unresolvable", f"Issuer {did} could not be resolved") from None
        if document.signing_key is None:
            raise _fail("unresolvable", f"Issuer {did} publishes no #atproto key")
        try:
            key = decode_multikey(document.signing_key)
        except MultikeyError as exc:
            raise _fail("unresolvable", f"Issuer {did} key is unusable: {exc}") from None
        self._keys[did] = key
        return key

    async def _forget(self, did: str) -> None:
        self._keys.pop(did, None)
        result = self._resolver.purge(did)
        if inspect.isawaitable(result):
            await result
