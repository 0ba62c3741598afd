from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.sealing import Sealer, SealError, fingerprint

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZGJfc2FfaWQifQ.sig-value-here"


def test_seal_round_trip_and_ciphertext_hides_token() -> None:
    sealer = Sealer(SecretStr("key-material"))
    sealed = sealer.seal(SecretStr(TOKEN))
    assert TOKEN not in sealed and TOKEN[:20] not in sealed
    assert sealer.unseal(sealed).get_secret_value() == TOKEN
    assert "key-material" not in repr(sealer)


def test_other_key_cannot_unseal() -> None:
    sealed = Sealer(SecretStr("key-a")).seal(SecretStr(TOKEN))
    with pytest.raises(SealError) as info:
        Sealer(SecretStr("key-b")).unseal(sealed)
    assert TOKEN not in str(info.value)


def test_signatures_detect_tampering() -> None:
    sealer = Sealer(SecretStr("k"))
    signed = sealer.sign('{"a":"revoke-jwks"}')
    assert sealer.verify(signed) == '{"a":"revoke-jwks"}'
    for forged in (
        signed.replace("revoke-jwks", "delete-federation"),
        "nosignature",
        "." + signed.split(".", 1)[1],
    ):
        with pytest.raises(SealError):
            sealer.verify(forged)
    with pytest.raises(SealError):
        Sealer(SecretStr("other")).verify(signed)


def test_fingerprint_is_sha256_prefix() -> None:
    assert fingerprint("abc") == "ba7816bf"
    assert len(fingerprint(TOKEN)) == 8
