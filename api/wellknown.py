"""`/.well-known/did.json`: this AppView's did:web document, so PDSes can address it.

Built from INSTANCE_DID (a did:web; with another DID method there is nothing to serve here),
INSTANCE_DOMAIN (the AppView's service endpoint), PDS_URL (the PDS hosting community repos) and
INSTANCE_PUBLIC_KEY_MULTIBASE (the `#atproto` key; omitted when unset).
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint, Response

from engine.config import Config

from .errors import NotFound

__all__ = ["blueprint", "did_document"]


def did_document(config: Config) -> dict[str, Any] | None:
    """The DID document of `config.service_did`, or None when it is not a did:web."""
    did = config.service_did
    if not did.startswith("did:web:"):
        return None
    scheme = "http" if config.instance_domain.split(":")[0] in ("localhost", "127.0.0.1") else "https"
    document: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "service": [
            {"id": "#coves_appview", "type": "CovesAppView",
             "serviceEndpoint": f"{scheme}://{config.instance_domain}"},
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
             "serviceEndpoint": config.pds_url.rstrip("/")},
        ],
    }
    if config.instance_public_key_multibase:
        document["verificationMethod"] = [{
            "id": f"{did}#atproto", "type": "Multikey", "controller": did,
            "publicKeyMultibase": config.instance_public_key_multibase}]
    return document


def blueprint(config: Config) -> Blueprint:
    """The well-known endpoint for `config`."""
    wellknown = Blueprint("wellknown", __name__)
    body = did_document(config)
    payload = orjson.dumps(body) if body is not None else None

    @wellknown.get("/.well-known/did.json")
    async def did_json() -> Response:
        if payload is None:
            raise NotFound(f"{config.service_did} is not a did:web: no document is served here")
        return Response(payload, content_type="application/json")

    return wellknown
