"""Signing keys and DID documents for auth tests: real ES256K/ES256 keys made with cryptography,
served by an in-test resolver that fits api.auth.DidResolver."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from api.multikey import encode_multikey

AUDIENCE = "did:web:appview.test"
CURVES = {"ES256K": ec.SECP256K1(), "ES256": ec.SECP256R1()}


@dataclasses.dataclass(frozen=True)
class DidDoc:
    id: str
    signing_key: str | None
    also_known_as: tuple[str, ...] = ()
    handle: str | None = None
    pds_endpoint: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)


class UnknownDid(Exception):
    pass


class KeyResolver:
    """DID → document, with keys made on demand; counts resolutions and purges."""

    def __init__(self) -> None:
        self.docs: dict[str, DidDoc] = {}
        self.private: dict[str, tuple[str, ec.EllipticCurvePrivateKey]] = {}
        self.resolved: list[str] = []
        self.purged: list[str] = []

    def add(self, did: str, alg: str = "ES256K") -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(CURVES[alg])
        self.private[did] = (alg, key)
        self.docs[did] = DidDoc(did, encode_multikey(key.public_key()))
        return key

    async def resolve(self, did: str) -> DidDoc:
        self.resolved.append(did)
        if did not in self.docs:
            raise UnknownDid(did)
        return self.docs[did]

    def purge(self, did: str) -> None:
        self.purged.append(did)

    def token(self, did: str, lxm: str, *, alg: str | None = None, aud: str = AUDIENCE,
              exp_in: float = 60, key: Any = None, **claims: Any) -> str:
        """A service-auth JWT from `did` for method `lxm` (signed with its key unless `key`).

        Like the reference PDS's, each carries a fresh random `jti` unless `claims` names one
        (`jti=None` leaves it out).
        """
        if did not in self.private:
            self.add(did, alg or "ES256K")
        own_alg, own_key = self.private[did]
        now = int(time.time())
        payload = {"iss": did, "aud": aud, "lxm": lxm, "exp": now + exp_in, "iat": now,
                   "jti": secrets.token_hex(16), **claims}
        if payload["jti"] is None:
            del payload["jti"]
        return jwt.encode(payload, key if key is not None else own_key, algorithm=alg or own_alg)

    def bearer(self, did: str, lxm: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(did, lxm, **kwargs)}"}
