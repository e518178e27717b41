"""Canonical JSON (RFC 8785) for evidence: one byte string per value, anything else refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.evidence.canonical import MAX_INTEGER, NotCanonical, canonical, parse_canonical


def test_members_are_sorted_and_nothing_is_spaced() -> None:
    assert canonical({"b": 1, "a": [True, "ñ"], "c": {"z": "", "y": 0}}) == (
        '{"a":[true,"ñ"],"b":1,"c":{"y":0,"z":""}}'.encode()
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 1}',  # spaced
        b'{"a":1,"a":1}',  # duplicate
        b'{"a":1.0}',  # a float
        b'{"a":-1}',  # negative
        b'{"a":9007199254740992}',  # 2^53
        b'{"a":"\\u0041"}',  # an escape where the character itself is canonical
        b'{"a":"\xff"}',  # not UTF-8
        b'["a"]',  # not an object
        b'{"a":1}\n',  # a trailing newline
    ],
)
def test_anything_but_the_canonical_form_is_refused(raw: bytes) -> None:
    with pytest.raises(NotCanonical):
        parse_canonical(raw)


@pytest.mark.parametrize("value", [{"a": 1.5}, {"a": -1}, {"a": MAX_INTEGER + 1}, {"é": 1}, {"a": None}])
def test_values_outside_the_profile_have_no_canonical_form(value: dict[str, object]) -> None:
    with pytest.raises(NotCanonical):
        canonical(value)


json_values = st.recursive(
    st.booleans() | st.integers(0, MAX_INTEGER) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), json_values, max_size=5))
def test_every_allowed_value_round_trips_and_parses_as_plain_json(value: dict[str, object]) -> None:
    raw = canonical(value)
    assert parse_canonical(raw) == value
    assert json.loads(raw) == value
