"""Service auth over engine/identity's real DidResolver: DID documents fetched over HTTPS from a
local PLC directory (the identity tests' TLS server and CA), as `coves run` wires it."""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import create_app
from api.multikey import encode_multikey
from engine.db import Database
from engine.identity.fetch import Fetcher
from engine.identity.resolver import DidResolver
from tests import factories as f
from tests.identity.conftest import ca, client_ssl, fetcher, https_server, server_ssl  # noqa: F401
from tests.identity.server import TestServer, json_reply

from .conftest import api_config, get_json
from .keys import AUDIENCE

TIMELINE = "/xrpc/social.coves.feed.getTimeline"
LXM = "social.coves.feed.getTimeline"


def document(did: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/did/v1"], "id": did, "alsoKnownAs": [],
            "verificationMethod": [{"id": f"{did}#atproto", "type": "Multikey", "controller": did,
                                    "publicKeyMultibase": encode_multikey(key.public_key())}],
            "service": []}


def bearer(did: str, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"iss": did, "aud": AUDIENCE, "lxm": LXM, "iat": now, "exp": now + 60},
                       key, algorithm="ES256K")
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_verify_against_documents_from_the_plc_directory(
        db: Database, https_server: TestServer, fetcher: Fetcher) -> None:
    did, key = f.did("alice"), ec.generate_private_key(ec.SECP256K1())
    https_server.routes[f"/{did}"] = json_reply(document(did, key))
    resolver = DidResolver(fetcher, plc_url=f"https://plc.coves.test:{https_server.port}")
    app = create_app(api_config(), db, resolver)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await get_json(client, TIMELINE, headers=bearer(did, key)))[0] == 200
        # the key rotates: the cached document is dropped and fetched again once
        rotated = ec.generate_private_key(ec.SECP256K1())
        https_server.routes[f"/{did}"] = json_reply(document(did, rotated))
        assert (await get_json(client, TIMELINE, headers=bearer(did, rotated)))[0] == 200
        # the old key no longer verifies; a DID the directory does not know never does
        assert (await get_json(client, TIMELINE, headers=bearer(did, key)))[0] == 401
        stranger = f.did("stranger")
        status, body = await get_json(client, TIMELINE, headers=bearer(stranger, key))
        assert (status, body["error"]) == (401, "InvalidToken")
