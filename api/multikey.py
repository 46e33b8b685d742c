"""atproto public keys in DID documents: `publicKeyMultibase` multikeys ↔ `cryptography` keys.

A multikey is 'z' + base58btc(varint multicodec + compressed EC point): multicodec 0xe7 is a
secp256k1 public key (JWT alg ES256K), 0x1200 a NIST P-256 one (ES256)
(https://atproto.com/specs/cryptography).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["MultikeyError", "PublicKey", "decode_multikey", "encode_multikey"]

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {char: value for value, char in enumerate(_ALPHABET)}
SECP256K1_PUB: Final = 0xE7
P256_PUB: Final = 0x1200
_CURVES: Final[dict[int, tuple[ec.EllipticCurve, str]]] = {
    SECP256K1_PUB: (ec.SECP256K1(), "ES256K"),
    P256_PUB: (ec.SECP256R1(), "ES256"),
}
_COMPRESSED_POINT_BYTES: Final = 33


class MultikeyError(ValueError):
    """The value is not a multikey of a curve atproto signs with."""


@dataclasses.dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key and the one JWT algorithm it verifies."""

    key: ec.EllipticCurvePublicKey
    alg: str  # ES256K | ES256


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _INDEX:
            raise MultikeyError(f"{char!r} is not a base58btc character")
        number = number * 58 + _INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    while number:
        number, remainder = divmod(number, 58)
        chars.append(_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(chars))


def _read_varint(data: bytes) -> tuple[int, int]:
    """(value, bytes used) of an unsigned LEB128 varint at the start of `data`."""
    value = 0
    for index, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, index + 1
    raise MultikeyError("unterminated multicodec varint")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def decode_multikey(multibase: str) -> PublicKey:
    """The key in a `publicKeyMultibase` value.

    Raises:
        MultikeyError: not base58btc, an unknown multicodec, or not a point on the curve.
    """
    if not multibase.startswith("z") or len(multibase) > 128:
        raise MultikeyError("a multikey starts with 'z' (base58btc)")
    data = _b58decode(multibase[1:])
    codec, used = _read_varint(data)
    if codec not in _CURVES:
        raise MultikeyError(f"multicodec 0x{codec:x} is not secp256k1-pub or p256-pub")
    point = data[used:]
    if len(point) != _COMPRESSED_POINT_BYTES:
        raise MultikeyError(f"expected a {_COMPRESSED_POINT_BYTES}-byte compressed point")
    curve, alg = _CURVES[codec]
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise MultikeyError(f"not a point on {curve.name}") from exc
    return PublicKey(key, alg)


def encode_multikey(key: ec.EllipticCurvePublicKey) -> str:
    """The multikey of a secp256k1 or P-256 public key (what a DID document publishes).

    Raises:
        MultikeyError: the key is on another curve.
    """
    codecs = {type(curve): codec for codec, (curve, _alg) in _CURVES.items()}
    codec = codecs.get(type(key.curve))
    if codec is None:
        raise MultikeyError(f"curve {key.curve.name} has no atproto multicodec")
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return "z" + _b58encode(_varint(codec) + point)
