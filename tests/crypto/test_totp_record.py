"""The sealed TOTP record (docs/crypto.md, "Editor keys"): secret and replay guard, v2, with v1 still readable."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import crypto
from app.crypto import TotpRecord, open_totp_record, seal_totp_record

# Fixed vectors, made once with the editor key below: an independent
# implementation must open them to the same secret and step.
EDITOR_SECRET = bytes(range(32))
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
V2_SEALED = bytes.fromhex(
    "e0300e4f75722d7a77520eaaf0d3cb68e152e31b4d97384cafe8b5734a93ac098b5d8908060e1017d948822074aea615"
    "811c08e4b0cb66b0273dfd7d945b08dcfddbabab930d68814daa6c6ec0c94f262a52f1b1ad3738c4e6"
)
V1_SEALED = bytes.fromhex(
    "0b41f92629fa3d2de7517d4fdea318fee63f51288c72dd8aa2571a50f6539458d2fb768f7d63f37eb7f9aa71fd439d96"
    "72c4993a7f4d6de654d34120ffbae0907535acdccd1759a2c042339f987cdb6c"
)


@pytest.fixture
def editor() -> crypto.KeyPair:
    return crypto.keypair_from_secret(EDITOR_SECRET)


def test_the_fixed_vectors_open_to_their_secret_and_step(editor: crypto.KeyPair) -> None:
    assert editor.public.hex() == "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f"
    assert open_totp_record(editor, V2_SEALED) == TotpRecord(SECRET, 59_000_123)
    # A record written before revision 0005 is the bare secret: its guard starts at 0.
    assert open_totp_record(editor, V1_SEALED) == TotpRecord(SECRET, 0)


def test_the_v2_layout_is_version_step_secret(editor: crypto.KeyPair) -> None:
    raw = crypto.seal_open(editor, seal_totp_record(editor.public, TotpRecord(SECRET, 7)))
    assert raw == b"\x02" + struct.pack(">Q", 7) + SECRET.encode()


@given(
    secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=64),
    step=st.integers(0, 2**64 - 1),
)
def test_every_record_round_trips(secret: str, step: int) -> None:
    editor = crypto.keypair_from_secret(EDITOR_SECRET)
    assert open_totp_record(editor, seal_totp_record(editor.public, TotpRecord(secret, step))) == TotpRecord(
        secret, step
    )


def test_every_byte_flip_is_refused(editor: crypto.KeyPair) -> None:
    for index in range(len(V2_SEALED)):
        tampered = bytearray(V2_SEALED)
        tampered[index] ^= 0x01
        with pytest.raises(crypto.DecryptionError):
            open_totp_record(editor, bytes(tampered))


def test_another_editors_key_opens_nothing() -> None:
    with pytest.raises(crypto.DecryptionError):
        open_totp_record(crypto.generate_keypair(), V2_SEALED)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\x02",
        b"\x02" + bytes(7),  # a header cut short
        b"\x02" + bytes(8),  # a guard and no secret
        b"\x02" + bytes(8) + b"jbswy3dpehpk3pxp",  # lower case is not the alphabet
        b"\x03" + bytes(8) + SECRET.encode(),  # an unknown version reads as a v1 secret, which it is not
        b"JBSWY3DP",  # too short to be a secret
        SECRET.encode() + b"\n",
    ],
)
def test_a_malformed_record_is_refused(editor: crypto.KeyPair, plaintext: bytes) -> None:
    with pytest.raises(crypto.DecryptionError):
        open_totp_record(editor, crypto.seal(editor.public, plaintext))


def test_the_repr_shows_nothing() -> None:
    assert SECRET not in repr(TotpRecord(SECRET, 5))
    assert "5" not in repr(TotpRecord(SECRET, 5))
