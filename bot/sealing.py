"""Sealing the one secret a request must carry until it runs: the token to revoke.

``revoke-token`` is typed into the modal by the requester and executed later, after a
second person approves, possibly on another replica. The token therefore has to outlive
the request that carried it, but it must never be readable in the database: it is sealed
with Fernet (AES-128-CBC + HMAC-SHA256) under a key every replica derives from the same
secret, and the store wipes the ciphertext when the request ends. Humans only ever see
:func:`fingerprint`.

The same key signs the modal's ``private_metadata`` so a forged view submission cannot
point a confirmation at another target. Signing needs only :mod:`hmac`; Fernet is imported the first
time a token is sealed or unsealed, because loading cryptography's OpenSSL bindings keeps about
6.3 MB resident for the process's life: serve's ack side only verifies signatures and never pays it,
and a work process pays it once it handles its first ``revoke-token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["SealError", "Sealer", "fingerprint"]


class SealError(Exception):
    """A sealed value or a signature did not verify. Carries no secret."""


def fingerprint(secret: str) -> str:
    """The first 8 hex digits of the secret's SHA-256: enough to recognise, useless to replay."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


class Sealer:
    def __init__(self, key_material: SecretStr) -> None:
        raw = key_material.get_secret_value().encode()
        # Separate sub-keys so a signature can never be confused with a ciphertext.
        self._enc_key = base64.urlsafe_b64encode(hmac.new(raw, b"atlas-chatops/seal/v1", hashlib.sha256).digest())
        self._fernet_instance: Fernet | None = None
        self._mac_key = hmac.new(raw, b"atlas-chatops/sign/v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def _fernet(self) -> Fernet:
        if self._fernet_instance is None:
            from cryptography.fernet import Fernet  # see the module's docstring

            self._fernet_instance = Fernet(self._enc_key)
        return self._fernet_instance

    def seal(self, secret: SecretStr) -> str:
        return self._fernet().encrypt(secret.get_secret_value().encode()).decode()

    def unseal(self, sealed: str) -> SecretStr:
        from cryptography.fernet import InvalidToken

        try:
            return SecretStr(self._fernet().decrypt(sealed.encode()).decode())
        except (InvalidToken, ValueError) as exc:
            raise SealError("the sealed secret does not verify under this bot's key") from exc

    def sign(self, payload: str) -> str:
        mac = hmac.new(self._mac_key, payload.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{mac}.{payload}"

    def verify(self, signed: str) -> str:
        mac, sep, payload = signed.partition(".")
        expected = hmac.new(self._mac_key, payload.encode(), hashlib.sha256).hexdigest()[:32]
        if not sep or not hmac.compare_digest(mac, expected):
            raise SealError("the signature does not match")
        return payload
