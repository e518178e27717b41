"""How an instance key is named: its fingerprint (docs/evidence.md, "The instance key")."""

from __future__ import annotations

import hashlib


def fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def grouped(fingerprint_hex: str) -> str:
    """The fingerprint as people compare it: groups of four characters."""
    return " ".join(fingerprint_hex[i : i + 4] for i in range(0, len(fingerprint_hex), 4))
