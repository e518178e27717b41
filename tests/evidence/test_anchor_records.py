"""Anchor records (docs/evidence.md, "Record"): round trips, and every inconsistency refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from app import crypto
from app.evidence import anchors
from app.evidence.anchors import Anchor, BadAnchor, Head
from app.evidence.canonical import canonical

DAY = dt.date(2026, 12, 3)
LEAVES = sorted(bytes([n]) * 32 for n in range(1, 6))


def _anchor(head: Head | None = None) -> Anchor:
    leaves = list(LEAVES)
    head = head or Head()
    commitment = head.commitment()
    if commitment is not None:
        leaves = sorted([*leaves, commitment])
    statement = anchors.statement(instance="cd" * 32, day=DAY, leaves=leaves)
    return Anchor(statement=statement, leaves=leaves, reply=b"\x30\x03\x02\x01\x00", head=head)


def _document(**changes: Any) -> bytes:
    fields = json.loads(_anchor().document())
    fields.update(changes)
    return canonical(fields)


def test_an_anchor_round_trips_unsigned_and_signed() -> None:
    anchor = _anchor(Head(link="ef" * 32, seq=41))
    assert anchors.parse_anchor(anchor.document()) == anchor
    key = crypto.new_signing_key()
    signed = anchors.sign(anchor, key)
    assert anchors.parse_anchor(signed.document()) == signed
    assert signed.signed_by(key.public)
    assert not anchor.signed_by(key.public)
    assert anchor.day == DAY


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("leaves", [leaf.hex() for leaf in reversed(LEAVES)]),  # not sorted
        ("leaves", [leaf.hex() for leaf in LEAVES[:-1]]),  # one removed: count and root differ
        ("leaves", [leaf.hex() for leaf in [*LEAVES, LEAVES[-1]]]),  # a duplicate
        ("leaves", [LEAVES[0].hex()[:-2], *(leaf.hex() for leaf in LEAVES[1:])]),  # a short leaf
        ("reply", "not base64!"),
        ("reply", "MAMCAQA"),  # unpadded: not the canonical encoding
        ("head", {"head": "ab" * 32, "seq": 1}),  # a head whose commitment is not a leaf
        ("head", {"head": "xyz", "seq": 0}),
        ("anchor", 2),
        ("extra", "member"),
    ],
)
def test_an_inconsistent_record_is_refused(member: str, value: Any) -> None:
    with pytest.raises(BadAnchor):
        anchors.parse_anchor(_document(**{member: value}))


def test_a_statement_changed_in_any_member_is_refused() -> None:
    statement = json.loads(_anchor().statement)
    for member, value in [("root", "00" * 32), ("leaves", 4), ("day", "2026-12-4"), ("statement", "other")]:
        with pytest.raises(BadAnchor):
            anchors.parse_anchor(_document(statement={**statement, member: value}))


def test_a_record_that_is_not_canonical_is_refused() -> None:
    raw = _anchor().document()
    with pytest.raises(BadAnchor):
        anchors.parse_anchor(raw.replace(b'{"anchor":1,', b'{"anchor": 1,'))


def test_a_proof_comes_only_for_a_leaf_the_anchor_holds() -> None:
    anchor = _anchor()
    assert anchor.proof(LEAVES[2]) is not None
    assert anchor.proof(bytes(32)) is None
