"""Canonical JSON (RFC 8785, JCS) for the values evidence uses: one byte string per value.

Every member name is ASCII and every value a string, boolean, non-negative
integer below 2^53, list or object, so Python's sorted, compact, non-ASCII-
preserving dump is exactly the JCS form (docs/evidence.md, "Encodings").
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAX_INTEGER = 2**53 - 1


class NotCanonical(ValueError):
    """Not canonical JSON of an allowed value."""


def canonical(value: Any) -> bytes:
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_canonical(raw: bytes) -> dict[str, Any]:
    """The object ``raw`` encodes, if ``raw`` is exactly its canonical form."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_float=_no_float)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise NotCanonical("not JSON") from e
    if not isinstance(value, dict) or canonical(value) != raw:
        raise NotCanonical("not the canonical form")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise NotCanonical("duplicate member")
    return found


def _no_float(text: str) -> float:
    raise NotCanonical("numbers are integers")


def _check(value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_INTEGER:
            raise NotCanonical("integer out of range")
        return
    if isinstance(value, list):
        for member in value:
            _check(member)
        return
    if isinstance(value, dict):
        for name, member in value.items():
            if not isinstance(name, str) or not name.isascii():
                raise NotCanonical("member names are ASCII")
            _check(member)
        return
    raise NotCanonical(f"no canonical form for {type(value).__name__}")


def b64_decode(value: Any) -> bytes:
    """Standard base64 with padding, and only its one canonical encoding (docs/export.md, "Encodings")."""
    if not isinstance(value, str):
        raise NotCanonical("not base64")
    try:
        decoded = base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise NotCanonical("not base64") from e
    if base64.b64encode(decoded).decode("ascii") != value:
        raise NotCanonical("not canonical base64")
    return decoded
