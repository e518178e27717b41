"""Intake receipts (docs/evidence.md, "Receipts"): the fixed vector, round trips, every tampering, wrong keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import crypto
from app.crypto import DecryptionError
from app.evidence import receipts
from app.evidence.canonical import canonical
from app.evidence.receipts import BadReceipt, Receipt

VECTORS = json.loads((Path(__file__).with_name("vectors.json")).read_text(encoding="utf-8"))


def sample(**changes: Any) -> Receipt:
    fields: dict[str, Any] = {**VECTORS["receipt"]["receipt"]}
    fields.pop("receipt")
    return dataclasses.replace(Receipt(**fields), **changes)


def test_the_fixed_vector_opens_to_its_receipt_and_commitment() -> None:
    vector = VECTORS["receipt"]
    opened = receipts.open_receipt(bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["record"]))
    assert opened == sample()
    assert opened.document().decode() == vector["document"]
    assert opened.commitment().hex() == vector["commitment"]
    assert len(bytes.fromhex(vector["record"])) == crypto.RECEIPT_SIZE == 809


def test_every_flipped_byte_of_a_record_is_refused() -> None:
    vector = VECTORS["receipt"]
    data_key, record = bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["record"])
    for offset in range(len(record)):
        tampered = bytearray(record)
        tampered[offset] ^= 0x01
        with pytest.raises(DecryptionError):
            receipts.open_receipt(data_key, bytes(tampered))


@pytest.mark.parametrize("cut", [record_len for record_len in (0, 1, 808, 810)])
def test_a_record_of_another_length_is_refused(cut: int) -> None:
    record = bytes.fromhex(VECTORS["receipt"]["record"])
    resized = record[:cut] if cut <= len(record) else record + b"\0"
    with pytest.raises(DecryptionError):
        receipts.open_receipt(bytes.fromhex(VECTORS["receipt"]["data_key"]), resized)


def test_another_envelopes_key_opens_nothing() -> None:
    record = bytes.fromhex(VECTORS["receipt"]["record"])
    with pytest.raises(DecryptionError):
        receipts.open_receipt(crypto.new_data_key(), record)


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "reply"},
        {"owner": "A" * 32},
        {"sent_sha256": "0" * 63},
        {"received": "2026-12-04 05:06:07"},
        {"cleaning": "scrubbed"},
        {"cleaner": "someone else's tool"},
        {"detected": "JPEG"},
        {"sent_size": True},
        {"kind": "message", "cleaning": "stripped"},
    ],
)
def test_a_receipt_outside_the_schema_is_refused(changes: dict[str, Any]) -> None:
    document = canonical({"receipt": 1, **dataclasses.asdict(sample(**changes))})
    with pytest.raises(BadReceipt):
        receipts.parse_receipt(document)
    data_key = crypto.new_data_key()
    sealed = crypto.seal_receipt(data_key, document)
    with pytest.raises(DecryptionError):  # and once sealed, it does not open
        receipts.open_receipt(data_key, sealed)


def test_a_receipt_with_a_member_more_or_less_is_refused() -> None:
    fields = {"receipt": 1, **dataclasses.asdict(sample())}
    with pytest.raises(BadReceipt):
        receipts.parse_receipt(canonical({**fields, "extra": ""}))
    del fields["salt"]
    with pytest.raises(BadReceipt):
        receipts.parse_receipt(canonical(fields))
    with pytest.raises(BadReceipt):
        receipts.parse_receipt(canonical({**fields, "salt": "00" * 32, "receipt": 2}))


hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)


@given(
    sent=st.integers(0, 2**40),
    stored=st.integers(0, 2**40),
    digests=st.tuples(hex64, hex64, hex64),
    kind=st.sampled_from(["message", "file"]),
)
def test_any_receipt_round_trips_and_its_commitment_depends_on_every_member(
    sent: int, stored: int, digests: tuple[str, str, str], kind: str
) -> None:
    receipt = sample(
        kind=kind,
        cleaning="" if kind == "message" else "none-found",
        sent_size=sent,
        stored_size=stored,
        sent_sha256=digests[0],
        stored_sha256=digests[1],
        salt=digests[2],
    )
    data_key = crypto.new_data_key()
    assert receipts.open_receipt(data_key, receipts.seal_receipt(data_key, receipt)) == receipt
    assert receipt.commitment() != dataclasses.replace(receipt, salt=receipts.new_salt()).commitment()
    assert receipt.commitment() != dataclasses.replace(receipt, sent_size=sent + 1).commitment()


def test_the_commitment_is_labelled_and_salted() -> None:
    receipt = sample()
    assert receipt.commitment() == hashlib.sha256(b"buzon-commit-receipt-v1:" + receipt.document()).digest()
    # Without the salt a document's holder cannot recompute it: the content hash alone is not enough.
    assert hashlib.sha256(bytes.fromhex(receipt.stored_sha256)).digest() != receipt.commitment()


def test_a_receipt_matches_only_its_own_envelope() -> None:
    data_key = crypto.new_data_key()
    metadata = crypto.EnvelopeMetadata(
        kind="file", name="a.jpg", type="image/jpeg", size=1900, sha256=sample().stored_sha256,
        received=sample().received, sanitised="stripped", owner=sample().owner,
    )  # fmt: skip
    sealed = crypto.seal_metadata(data_key, metadata)
    receipt = sample(envelope=hashlib.sha256(sealed).hexdigest())
    assert receipts.check_against_envelope(receipt, metadata, sealed)
    other = crypto.seal_metadata(data_key, metadata)  # the same facts, another envelope
    assert not receipts.check_against_envelope(receipt, metadata, other)
    assert not receipts.check_against_envelope(receipt, dataclasses.replace(metadata, size=1901), sealed)
    assert not receipts.check_against_envelope(receipt, dataclasses.replace(metadata, owner="0" * 32), sealed)
