"""Merkle trees of docs/evidence.md, "Anchors": RFC 6962's shape, its published roots, sound audit paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.evidence import merkle

# The reference test vectors of RFC 6962 trees (certificate-transparency's merkle tree tests):
# the root of the first n of these leaves.
LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("n", range(1, len(LEAVES) + 1))
def test_roots_are_rfc_6962s(n: int) -> None:
    assert merkle.root(LEAVES[:n]).hex() == ROOTS[n - 1]


def test_an_empty_tree_has_no_root() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.root([])


leaf_lists = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True)


@given(leaves=leaf_lists, data=st.data())
def test_every_leaf_has_a_path_to_the_root(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.audit_path(index, leaves)
    assert merkle.root_from_path(leaves[index], index, len(leaves), path) == merkle.root(leaves)


@given(leaves=leaf_lists.filter(lambda leaves: len(leaves) > 1), data=st.data())
def test_a_path_proves_nothing_else(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.audit_path(index, leaves)
    root = merkle.root(leaves)
    other = data.draw(st.integers(0, len(leaves) - 1).filter(lambda i: i != index))
    # Another leaf, the leaf at another index, a flipped sibling, a path cut short or lengthened.
    assert merkle.root_from_path(leaves[other], index, len(leaves), path) != root
    assert merkle.root_from_path(leaves[index], other, len(leaves), path) != root
    level = data.draw(st.integers(0, len(path) - 1))
    flipped = [*path]
    flipped[level] = bytes([flipped[level][0] ^ 1]) + flipped[level][1:]
    assert merkle.root_from_path(leaves[index], index, len(leaves), flipped) != root
    assert merkle.root_from_path(leaves[index], index, len(leaves), path[:-1]) is None
    assert merkle.root_from_path(leaves[index], index, len(leaves), [*path, root]) is None


def test_a_leaf_cannot_pass_as_an_inner_node() -> None:
    # Leaves and nodes hash with different prefixes (0x00, 0x01): two leaves' hashes joined are not a leaf.
    a, b = b"a" * 32, b"b" * 32
    joined = merkle.leaf_hash(a) + merkle.leaf_hash(b)
    assert merkle.root([joined]) != merkle.root([a, b])


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_an_index_outside_the_tree_proves_nothing(index: int, size: int) -> None:
    assert merkle.root_from_path(b"x" * 32, index, size, []) is None
