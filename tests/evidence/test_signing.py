"""Ed25519 signatures of docs/evidence.md: the fixed vector, labels that keep kinds apart, every tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import crypto
from app.evidence.identity import fingerprint, grouped

VECTOR = json.loads((Path(__file__).with_name("vectors.json")).read_text(encoding="utf-8"))["signature"]
LABEL = VECTOR["label"].encode()
MESSAGE = VECTOR["message"].encode()
SIGNATURE = bytes.fromhex(VECTOR["signature"])
PUBLIC = bytes.fromhex(VECTOR["public_key"])


def test_the_fixed_vector_signs_and_verifies() -> None:
    key = crypto.signing_key_from_seed(bytes.fromhex(VECTOR["seed"]))
    assert key.public == PUBLIC
    assert crypto.sign(key, LABEL, MESSAGE) == SIGNATURE
    assert crypto.signature_valid(PUBLIC, LABEL, MESSAGE, SIGNATURE)
    assert fingerprint(PUBLIC) == VECTOR["fingerprint"]


def test_a_signature_under_one_label_is_not_valid_under_another() -> None:
    assert not crypto.signature_valid(PUBLIC, b"buzon-sign-custody-v1:", MESSAGE, SIGNATURE)


def test_every_flipped_bit_of_message_or_signature_fails() -> None:
    for offset in range(len(SIGNATURE)):
        tampered = bytearray(SIGNATURE)
        tampered[offset] ^= 0x01
        assert not crypto.signature_valid(PUBLIC, LABEL, MESSAGE, bytes(tampered))
    for offset in range(0, len(MESSAGE), 7):
        tampered = bytearray(MESSAGE)
        tampered[offset] ^= 0x01
        assert not crypto.signature_valid(PUBLIC, LABEL, bytes(tampered), SIGNATURE)


def test_another_key_and_malformed_inputs_fail_without_raising() -> None:
    assert not crypto.signature_valid(crypto.new_signing_key().public, LABEL, MESSAGE, SIGNATURE)
    assert not crypto.signature_valid(PUBLIC[:31], LABEL, MESSAGE, SIGNATURE)
    assert not crypto.signature_valid(PUBLIC, LABEL, MESSAGE, SIGNATURE[:63])
    assert not crypto.signature_valid(bytes(32), LABEL, MESSAGE, bytes(64))


def test_a_seed_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(crypto.DecryptionError):
        crypto.signing_key_from_seed(bytes(31))


def test_a_signing_key_never_shows_its_seed() -> None:
    key = crypto.signing_key_from_seed(bytes.fromhex(VECTOR["seed"]))
    assert VECTOR["seed"] not in repr(key)
    assert VECTOR["seed"][:16] not in repr(key)


def test_fingerprints_are_grouped_for_people() -> None:
    assert grouped("0123456789abcdef") == "0123 4567 89ab cdef"
