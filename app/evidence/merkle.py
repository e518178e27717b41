"""Merkle trees as in RFC 6962, section 2.1: roots and audit paths over a day's leaves."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over ``leaves`` in the order given; a tree needs at least one leaf."""
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    return _root([leaf_hash(leaf) for leaf in leaves])


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root(hashes[:k]), _root(hashes[k:]))


def audit_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves) of RFC 6962, section 2.1.1: the siblings from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError("no such leaf")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return [*_path(index, hashes[:k]), _root(hashes[k:])]
    return [*_path(index - k, hashes[k:]), _root(hashes[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves ``leaf`` at ``index`` of ``size`` leaves is under; None if malformed.

    Walks the tree from the top to find which side the leaf is on at each level
    (RFC 6962's shape, not a perfect tree), then hashes upward.
    """
    if not 0 <= index < size:
        return None
    sides: list[bool] = []  # True where the sibling is on the right
    lo, n = index, size
    while n > 1:
        k = _split(n)
        if lo < k:
            sides.append(True)
            n = k
        else:
            sides.append(False)
            lo, n = lo - k, n - k
    if len(sides) != len(path):
        return None
    value = leaf_hash(leaf)
    for sibling_on_right, sibling in zip(reversed(sides), path, strict=True):
        value = node_hash(value, sibling) if sibling_on_right else node_hash(sibling, value)
    return value
