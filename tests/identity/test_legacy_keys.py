"""DID documents in the legacy key form (EcdsaSecp256k1/r1VerificationKey2019, bare key bytes,
as older PLC software such as the test harness's @did-plc/server serves them) give the same
signing key as the Multikey form."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.multikey import _b58encode, encode_multikey
from engine.identity.resolver import DidDocument

DID = "did:plc:legacykeyaaaaaaaaaaaaaaa"


def document(method_type: str, key_multibase: str) -> dict[str, object]:
    return {"id": DID, "alsoKnownAs": [], "service": [], "verificationMethod": [
        {"id": "#atproto", "type": method_type, "controller": DID,
         "publicKeyMultibase": key_multibase}]}


@pytest.mark.parametrize(("curve", "method_type"), [
    (ec.SECP256K1(), "EcdsaSecp256k1VerificationKey2019"),
    (ec.SECP256R1(), "EcdsaSecp256r1VerificationKey2019")])
@pytest.mark.parametrize("form", [serialization.PublicFormat.UncompressedPoint,
                                  serialization.PublicFormat.CompressedPoint])
def test_legacy_keys_read_as_multikeys(curve: ec.EllipticCurve, method_type: str,
                                       form: serialization.PublicFormat) -> None:
    for _ in range(4):  # both parities of y, most likely
        key = ec.generate_private_key(curve).public_key()
        raw = key.public_bytes(serialization.Encoding.X962, form)
        parsed = DidDocument.parse(DID, document(method_type, "z" + _b58encode(raw)))
        assert parsed.signing_key == encode_multikey(key)


def test_a_multikey_is_kept_and_a_broken_legacy_key_is_none() -> None:
    key = encode_multikey(ec.generate_private_key(ec.SECP256K1()).public_key())
    assert DidDocument.parse(DID, document("Multikey", key)).signing_key == key
    broken = DidDocument.parse(DID, document("EcdsaSecp256k1VerificationKey2019", "z111"))
    assert broken.signing_key is None
