"""api/secretbox.py: AES-256-GCM with a fresh nonce per value, bound to its context, keyed by
COVES_ENCRYPTION_KEY (or a development key file)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from api.secretbox import KeyMismatch, SecretBox, SecretBoxError, load_or_create_dev_key, parse_key

KEY = bytes(range(32))


def test_values_round_trip_with_a_fresh_nonce_each_time() -> None:
    box = SecretBox(KEY)
    one, two = box.seal("hunter2", "c/password_enc"), box.seal("hunter2", "c/password_enc")
    assert one != two and one[1:13] != two[1:13]  # random 96-bit nonces
    assert b"hunter2" not in one
    assert box.open(one, "c/password_enc") == box.open(two, "c/password_enc") == "hunter2"


def test_a_value_opens_only_in_its_context_unaltered_and_under_its_key() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("token", "alpha/access_jwt_enc")
    with pytest.raises(SecretBoxError):
        box.open(sealed, "beta/access_jwt_enc")  # copied into another row
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretBoxError):
        box.open(altered, "alpha/access_jwt_enc")
    with pytest.raises(SecretBoxError):
        box.open(b"\x01short", "alpha/access_jwt_enc")
    other = SecretBox(os.urandom(32))
    with pytest.raises(KeyMismatch):
        other.open(sealed, "alpha/access_jwt_enc", key_id=box.key_id)
    with pytest.raises(SecretBoxError):
        other.open(sealed, "alpha/access_jwt_enc")


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode(),
                                  base64.b64encode(bytes(33)).decode()])
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_key(text)


def test_keys_decode_from_standard_and_url_safe_base64() -> None:
    key = bytes([0xFB] * 32)
    assert parse_key(base64.b64encode(key).decode()) == key
    assert parse_key(base64.urlsafe_b64encode(key).decode().rstrip("=")) == key


def test_development_key_is_created_private_once_and_reused(tmp_path: Path) -> None:
    key = load_or_create_dev_key(tmp_path / "data")
    path = tmp_path / "data" / "encryption.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_dev_key(tmp_path / "data") == key
