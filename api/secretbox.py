"""Encryption at rest of community credentials: AES-256-GCM under COVES_ENCRYPTION_KEY.

Each value is sealed with a fresh random 96-bit nonce (NIST SP 800-38D §8.2.2: random nonces
are safe for up to 2^32 messages under one key — far beyond the few tokens per community we
store) and bound to its context (`associated data`: the community name and the field), so a
ciphertext copied into another row or column does not decrypt. Layout of a sealed value:

    version (1 byte, 0x01) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

Key rotation (a limit, documented in the README): one key at a time. Each row stores the key's
fingerprint (`key_id`), so a row sealed under another key fails with a clear KeyMismatch rather
than a bare authentication error; re-encrypting rows under a new key is not automated.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.config import AES_KEY_BYTES, parse_aes_key

__all__ = ["KEY_BYTES", "KeyMismatch", "SecretBox", "SecretBoxError", "load_or_create_dev_key",
           "parse_key"]

LOGGER = logging.getLogger(__name__)
KEY_BYTES: Final = AES_KEY_BYTES
NONCE_BYTES: Final = 12  # 96 bits: GCM's native nonce size
VERSION: Final = b"\x01"
DEV_KEY_FILE: Final = "encryption.key"


class SecretBoxError(Exception):
    """A sealed value could not be opened (altered, truncated, or another context)."""


class KeyMismatch(SecretBoxError):
    """The value was sealed under another key than COVES_ENCRYPTION_KEY."""


# One decoder for the setting's check at start and for the key in use.
parse_key = parse_aes_key


def load_or_create_dev_key(data_dir: Path) -> bytes:
    """Development without COVES_ENCRYPTION_KEY: a key kept in COVES_DATA_DIR/encryption.key.

    Created (mode 0600) on first use, so credentials survive restarts of a development setup.
    Production refuses to start without COVES_ENCRYPTION_KEY (engine/config.py).
    """
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        return parse_key(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(base64.b64encode(key).decode() + "\n")
    LOGGER.warning("COVES_ENCRYPTION_KEY unset: development key written", extra={"path": str(path)})
    return key


class SecretBox:
    """Seals and opens values under one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"coves-secretbox\0" + key).hexdigest()[:16]

    def seal(self, plaintext: str, context: str) -> bytes:
        """Encrypt `plaintext`, bound to `context` (e.g. "name/field")."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str, *, key_id: str | None = None) -> str:
        """Decrypt a value sealed for `context`.

        Raises:
            KeyMismatch: `key_id` (the row's) names another key.
            SecretBoxError: the value is malformed, altered or sealed for another context.
        """
        if key_id is not None and key_id != self.key_id:
            raise KeyMismatch(f"sealed under key {key_id}, COVES_ENCRYPTION_KEY is {self.key_id}")
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
            raise SecretBoxError("not a sealed value")
        nonce, body = sealed[1:1 + NONCE_BYTES], sealed[1 + NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context.encode()).decode()
        except InvalidTag:
            raise SecretBoxError("value altered or sealed for another context") from None
