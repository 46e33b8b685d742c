"""Service-auth attacks over HTTP: forged, confused, mangled, expired and replayed tokens.

tests/api/test_auth.py proves 13 refusals at the verifier; here each of them and the attacks below
goes through the app on a method where auth is optional and one where it is required: every one
must be a 401 with the XRPC envelope, never a 200 as someone else, never a 5xx, and no header of
the token may make us fetch anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import jwt.algorithms
import orjson
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from api.app import build_router
from api.auth import LEEWAY_S, ServiceAuthVerifier
from api.errors import InvalidToken
from api.server import serve_api
from engine.db import Database
from tests import factories as f
from tests.api.conftest import (WRITE_ENV, Client, api_config, client, clock, config,  # noqa: F401
                                resolver)
from tests.api.keys import AUDIENCE, KeyResolver
from tests.api.test_auth import REFUSALS

from .conftest import Scenario

DISCOVER = "social.coves.feed.getDiscover"  # auth optional
TIMELINE = "social.coves.feed.getTimeline"  # auth required
CREATE = "social.coves.community.create"
VICTIM = f.did("victim")
Attack = Callable[[KeyResolver, str, str], str]  # (resolver, victim DID, lxm) → token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(did: str, lxm: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": did, "aud": AUDIENCE, "lxm": lxm, "exp": now + 60, "iat": now, **extra}


def attacker() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256K1())


def unsigned(body: dict[str, Any], alg: str) -> str:
    return f"{b64(orjson.dumps({'alg': alg, 'typ': 'JWT'}))}.{b64(orjson.dumps(body))}."


def with_header(header: dict[str, Any]) -> Attack:
    """Signed by the attacker, with header fields that try to name the key to check it with."""
    return lambda r, did, lxm: jwt.encode(claims(did, lxm), attacker(), algorithm="ES256K",
                                          headers=header)


def _hs256_empty_secret(r: KeyResolver, did: str, lxm: str) -> str:
    head, body = b64(orjson.dumps({"alg": "HS256", "typ": "JWT"})), b64(orjson.dumps(claims(did, lxm)))
    return f"{head}.{body}.{b64(hmac.new(b'', f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def _spliced(r: KeyResolver, did: str, lxm: str) -> str:
    """The victim's real signature on one payload, glued to another payload."""
    genuine = r.token(did, "social.coves.actor.getProfile").split(".")
    forged = b64(orjson.dumps(claims(did, lxm)))
    return f"{genuine[0]}.{forged}.{genuine[2]}"


def _stripped(r: KeyResolver, did: str, lxm: str) -> str:
    head, body, _signature = r.token(did, lxm).split(".")
    return f"{head}.{body}."


def _der_signature(r: KeyResolver, did: str, lxm: str) -> str:
    """A valid signature in DER form instead of JOSE's raw r||s."""
    from cryptography.hazmat.primitives import hashes
    head = b64(orjson.dumps({"alg": "ES256K", "typ": "JWT"}))
    body = b64(orjson.dumps(claims(did, lxm)))
    if did not in r.private:
        r.add(did)
    der = r.private[did][1].sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    return f"{head}.{body}.{b64(der)}"


ATTACKS: dict[str, Attack] = {
    "alg None": lambda r, did, lxm: unsigned(claims(did, lxm), "None"),
    "alg NONE": lambda r, did, lxm: unsigned(claims(did, lxm), "NONE"),
    "alg HS256, empty secret": _hs256_empty_secret,
    "alg RS256, attacker's RSA key": lambda r, did, lxm: jwt.encode(
        claims(did, lxm), rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256"),
    "alg EdDSA, attacker's key": lambda r, did, lxm: jwt.encode(
        claims(did, lxm), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"),
    "embedded jwk (attacker's key)": lambda r, did, lxm: jwt.encode(
        claims(did, lxm), key := attacker(), algorithm="ES256K",
        headers={"jwk": jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)}),
    "kid path traversal": with_header({"kid": "../../../../../dev/null"}),
    "kid SQL injection": with_header({"kid": "' OR '1'='1' --"}),
    "crit header": with_header({"crit": ["exp"], "exp": 1}),
    "signature stripped": _stripped,
    "victim's signature spliced onto another payload": _spliced,
    "DER-encoded signature": _der_signature,
    "victim's service id (#atproto_labeler) signed by the attacker": lambda r, did, lxm: jwt.encode(
        claims(f"{did}#atproto_labeler", lxm), attacker(), algorithm="ES256K"),
    "wrong lxm": lambda r, did, lxm: r.token(did, "social.coves.actor.getProfile"),
    "lxm as a list": lambda r, did, lxm: r.token(did, [lxm]),  # type: ignore[arg-type]
    "aud missing": lambda r, did, lxm: (r.add(did), jwt.encode(
        {k: v for k, v in claims(did, lxm).items() if k != "aud"}, r.private[did][1],
        algorithm="ES256K"))[1],
    "aud is another service": lambda r, did, lxm: r.token(did, lxm, aud="did:web:api.bsky.app"),
    "exp as a string": lambda r, did, lxm: r.token(did, lxm, exp=str(int(time.time()) + 60)),
    # PyJWT's encode refuses a non-string iss, so the claims are signed as raw bytes
    "iss is a number": lambda r, did, lxm: jwt.api_jws.encode(
        orjson.dumps(claims(did, lxm, iss=12345)), attacker(), algorithm="ES256K"),
    "header is not JSON": lambda r, did, lxm: f"{b64(b'not json')}.{b64(b'{}')}.c2ln",
    "two parts only": lambda r, did, lxm: "eyJhbGciOiJFUzI1NksifQ.e30",
    "10 KiB of claims": lambda r, did, lxm: jwt.encode(claims(did, lxm, pad="x" * 10_240),
                                                       attacker(), algorithm="ES256K"),
}


@pytest.mark.scenario("jwt-attacks")
@pytest.mark.parametrize("name", sorted(REFUSALS))
async def test_verifier_refusals_are_401_over_http(name: str, client: Client,  # noqa: F811
                                                   resolver: KeyResolver) -> None:
    """tests/api/test_auth.py's refusals (tokens for getDiscover), through the app."""
    token = REFUSALS[name](resolver, VICTIM)
    response = await client.get(f"/xrpc/{DISCOVER}", headers={"Authorization": f"Bearer {token}"})
    await _refused(response, token)


@pytest.mark.scenario("jwt-attacks")
@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_attack_is_refused_on_optional_and_required_methods(
        name: str, client: Client, resolver: KeyResolver) -> None:  # noqa: F811
    for lxm in (DISCOVER, TIMELINE):
        token = ATTACKS[name](resolver, VICTIM, lxm)
        response = await client.get(f"/xrpc/{lxm}", headers={"Authorization": f"Bearer {token}"})
        await _refused(response, token)


async def _refused(response: Any, token: str) -> None:
    body = await response.get_json()
    assert response.status_code == 401, body
    assert set(body) == {"error", "message"} and body["error"] in ("InvalidToken", "ExpiredToken")
    assert token not in body["message"]  # an error never echoes the token


@pytest.mark.scenario("jwt-attacks")
@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_key_url_headers_are_never_fetched(header: str, client: Client,  # noqa: F811
                                                 resolver: KeyResolver, nursery: trio.Nursery,
                                                 scenario: Scenario) -> None:
    connections: list[int] = []

    async def note_connection(stream: trio.SocketStream) -> None:
        connections.append(1)
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, note_connection, 0,
                                                      host="127.0.0.1"))
    url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/keys"
    token = with_header({header: url})(resolver, VICTIM, TIMELINE)
    response = await client.get(f"/xrpc/{TIMELINE}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and connections == []
    if header == "x5u":
        scenario.note(f"{len(REFUSALS)} verifier refusals + {len(ATTACKS)} more attacks × 2 "
                      "methods (optional, required auth) → 401 envelope each, token never echoed; "
                      "jku/x5u headers pointing at a local server: 0 connections")


# ---- expiry: the leeway's edges, on the required-auth method ----

EXPIRY = {  # name → (extra claims relative to now, expected status, expected error)
    "exp 35 s ago (beyond the 30 s leeway)": ({"exp": -35}, 401, "ExpiredToken"),
    "exp 25 s ago (within the leeway)": ({"exp": -25}, 200, None),
    "exp at the epoch": ({"exp": "epoch"}, 401, "ExpiredToken"),
    "nbf in 35 s": ({"nbf": 35}, 401, "ExpiredToken"),
    "nbf in 25 s": ({"nbf": 25}, 200, None),
    "iat in 35 s": ({"iat": 35}, 401, "ExpiredToken"),
    "iat in 25 s": ({"iat": 25}, 200, None),
    "no exp": ({"exp": None}, 401, "InvalidToken"),
}


@pytest.mark.scenario("jwt-expiry")
@pytest.mark.parametrize("name", list(EXPIRY))
async def test_expiry_edges(name: str, client: Client, resolver: KeyResolver) -> None:  # noqa: F811
    assert LEEWAY_S == 30
    changes, status, error = EXPIRY[name]
    now = int(time.time())
    body = claims(VICTIM, TIMELINE)
    for claim, offset in changes.items():
        if offset is None:
            del body[claim]
        else:
            body[claim] = 0 if offset == "epoch" else now + offset
    resolver.add(VICTIM)
    token = jwt.encode(body, resolver.private[VICTIM][1], algorithm="ES256K")
    response = await client.get(f"/xrpc/{TIMELINE}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    if error is not None:
        assert (await response.get_json())["error"] == error


# ---- replay ----


@pytest.mark.scenario("jwt-replay")
async def test_a_read_accepts_its_token_again_until_it_expires(client: Client,  # noqa: F811
                                                               resolver: KeyResolver) -> None:
    headers = resolver.bearer(VICTIM, TIMELINE, jti="nonce-1")
    statuses = [(await client.get(f"/xrpc/{TIMELINE}", headers=headers)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 200]  # reads are idempotent: documented in api/auth.py


@pytest.mark.scenario("jwt-replay")
async def test_single_use_verification_refuses_the_second_use(resolver: KeyResolver,  # noqa: F811
                                                              scenario: Scenario) -> None:
    verifier = ServiceAuthVerifier(resolver, audience=AUDIENCE)
    lxm = "social.coves.community.create"
    token = resolver.token(VICTIM, lxm, jti="nonce-1")
    assert await verifier.verify(token, {lxm}, single_use=True) == VICTIM
    with pytest.raises(InvalidToken, match="already used"):
        await verifier.verify(token, {lxm}, single_use=True)
    # the same token is still fine where reuse is allowed, and a fresh nonce passes
    assert await verifier.verify(token, {lxm}) == VICTIM
    assert await verifier.verify(resolver.token(VICTIM, lxm, jti="nonce-2"), {lxm},
                                 single_use=True) == VICTIM
    # nonces are per issuer: another DID may use the same string
    other = f.did("other")
    assert await verifier.verify(resolver.token(other, lxm, jti="nonce-1"), {lxm},
                                 single_use=True) == other
    with pytest.raises(InvalidToken, match="jti"):
        await verifier.verify(resolver.token(VICTIM, lxm, jti=None), {lxm}, single_use=True)
    # a refused token is not spent: the attempt with a wrong lxm leaves nonce-3 usable
    with pytest.raises(InvalidToken):
        await verifier.verify(resolver.token(VICTIM, "x.y.z", jti="nonce-3"), {lxm},
                              single_use=True)
    assert await verifier.verify(resolver.token(VICTIM, lxm, jti="nonce-3"), {lxm},
                                 single_use=True) == VICTIM
    scenario.note("reads: same token 3× → 200 each (by design); single-use: 2nd use → 401 "
                  "'already used', no jti → 401, nonces per issuer, a refused token is not spent")


@pytest.mark.scenario("jwt-replay")
async def test_spent_nonces_are_forgotten_once_their_token_expired(resolver: KeyResolver) -> None:  # noqa: F811
    now = [time.time()]
    verifier = ServiceAuthVerifier(resolver, audience=AUDIENCE, clock=lambda: now[0])
    lxm = "social.coves.community.create"
    for n in range(50):
        await verifier.verify(resolver.token(VICTIM, lxm, jti=f"n{n}", exp_in=60), {lxm},
                              single_use=True)
    assert len(verifier._spent) == 50
    now[0] += 60 + LEEWAY_S + 1  # past exp + leeway: such a token is refused as expired anyway
    verifier._spent.expire()
    assert len(verifier._spent) == 0  # memory holds only tokens that could still be replayed


@pytest.mark.scenario("jwt-replay")
async def test_a_write_token_works_once_over_http(db: Database, writer_db: Database,
                                                  resolver: KeyResolver, pds_network: Any,  # noqa: F811
                                                  scenario: Scenario) -> None:
    """Every procedure that takes a token, on a real Hypercorn with the write path to the session
    PDS: the second presentation of a token is 401 whatever the first answered, and a replayed
    community.create writes nothing more (a fresh token for the same name is a 409)."""
    from api.writes import open_writes

    config = api_config(API_PORT="0", PDS_URL=pds_network.pds_urls[0], **WRITE_ENV)
    authed = sorted(nsid for nsid, method in build_router(config).methods.items()
                    if method.kind == "procedure" and method.auth != "none")
    caller, name = f.did("replayer"), "r" + secrets.token_hex(5)
    async with (open_writes(config, db, writer_db) as writes, trio.open_nursery() as nursery):
        urls = await nursery.start(functools.partial(serve_api, config, db, resolver,
                                                     writes=writes))
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
            for nsid in authed:
                headers = resolver.bearer(caller, nsid)
                # uploadBlob names its community in the query string, parsed before the token
                first, second = [await http.post(f"/xrpc/{nsid}", headers=headers, json={},
                                                 params={"community": f.did("c")})
                                 for _ in range(2)]
                assert first.status_code not in (401, 500), (nsid, first.text)
                assert second.status_code == 401, (nsid, second.text)
                assert second.json() == {"error": "InvalidToken", "message": "Token was already used"}
            headers = resolver.bearer(caller, CREATE)
            created = await http.post(f"/xrpc/{CREATE}", headers=headers,
                                      json={"name": name, "description": "replay"})
            assert created.status_code == 200, created.text
            replayed = await http.post(f"/xrpc/{CREATE}", headers=headers,
                                       json={"name": "r" + secrets.token_hex(5),
                                             "description": "replay"})
            assert replayed.status_code == 401
            again = await http.post(f"/xrpc/{CREATE}", headers=resolver.bearer(caller, CREATE),
                                    json={"name": name, "description": "replay"})
            assert again.status_code == 409, again.text
        nursery.cancel_scope.cancel()
    assert await db.fetchval("SELECT count(*) FROM community_credentials WHERE created_by = $1",
                             caller) == 1
    scenario.note(f"real Hypercorn + PDS: {len(authed)} procedures × token twice → 2nd is 401 "
                  "'already used'; a replayed community.create created nothing")
